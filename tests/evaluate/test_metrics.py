import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import top_k_accuracy_score

from vggnet.evaluate.metrics import Predictions, confusion_matrix, predict, score


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(200, 7, generator=g), torch.randint(0, 7, (200,), generator=g)


def test_confusion_matrix_equals_sklearn(logits):
    scores, labels = logits
    predicted = scores.argmax(1)
    ours = confusion_matrix(labels, predicted, 7)
    assert ours.tolist() == sk_confusion(labels.numpy(), predicted.numpy(), labels=range(7)).tolist()


def test_predict_top_k_and_loss_equal_direct_computation(logits):
    scores, labels = logits

    class Table(torch.nn.Module):  # "model" whose output for image i is row i of the scores
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, idx):
            return scores[idx.long()] + self.w

    batches = [(torch.arange(i, min(i + 64, 200)), labels[i:i + 64]) for i in range(0, 200, 64)]
    pred = predict(Table(), batches, lambda x: x)
    for k in (1, 5):
        assert pred.accuracy(k) == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=range(7)))
    assert pred.loss == pytest.approx(torch.nn.functional.cross_entropy(scores, labels).item(), rel=1e-6)


def test_score_has_the_metrics_json_contract():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    topk = torch.tensor([[0, 1], [1, 0], [1, 2], [1, 0], [0, 2], [2, 1]])
    m = score(Predictions(labels, topk, loss_sum=3.0, skipped=1), ["a", "b", "c"])
    assert (m["top1"], m["top5"], m["loss"], m["images"], m["skipped"]) == (pytest.approx(4 / 6), 1.0, 0.5, 6, 1)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["confusion_matrix_normalized"] == [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]
    assert m["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1-score": 0.8, "support": 2.0}



def test_metrics_json_keeps_every_number_with_one_matrix_row_per_line():
    import json

    from vggnet.evaluate.metrics import Predictions, metrics_json

    g = torch.Generator().manual_seed(0)
    n = 1000  # ImageNet's count: the file stays a few MB, not one number per line
    labels, topk = torch.randint(0, n, (5000,), generator=g), torch.randint(0, n, (5000, 5), generator=g)
    metrics = score(Predictions(labels, topk, 1.0), [f"c{i}" for i in range(n)])
    text = metrics_json(metrics)
    assert json.loads(text) == json.loads(json.dumps(metrics))
    assert len(text.splitlines()) < 12_000 and len(text) < 8_000_000  # one number per line: 2,000,000+
