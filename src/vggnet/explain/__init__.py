"""Pictures of what a VGG sees: Grad-CAM, Grad-CAM++, saliency, guided backprop, filters,
activation maps and receptive fields, at layers named as the paper names them.

``from vggnet.explain import class_maps, explain_images, show_filters, show_activations, show_field``.
"""

from vggnet.explain.gradients import ClassMaps, class_maps, default_layer, resolve_layer
from vggnet.explain.run import explain_images, show_activations, show_field, show_filters, unit_field

__all__ = ["ClassMaps", "class_maps", "default_layer", "explain_images", "resolve_layer", "show_activations",
           "show_field", "show_filters", "unit_field"]
