"""Datasets: CIFAR-10 (official format), class folders (dir or tar), the embedded sample."""

from vggnet.data.arrays import ImageArrays, stratified_split
from vggnet.data.cifar import load_cifar10
from vggnet.data.datasets import DataSplits, load_data, sample_archive
from vggnet.data.download import download

__all__ = ["DataSplits", "ImageArrays", "download", "load_cifar10", "load_data", "sample_archive",
           "stratified_split"]
