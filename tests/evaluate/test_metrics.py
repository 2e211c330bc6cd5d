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


def test_confusion_text_has_counts_and_rates_aligned():
    from vggnet.evaluate.report import confusion_text

    text = confusion_text([[3, 1], [0, 4]], ["cat", "dog"])
    lines = text.splitlines()
    assert lines[0] == "counts" and lines[5] == "normalised by true class"
    assert lines[2].split() == ["cat", "3", "1"] and lines[7].split() == ["cat", "0.750", "0.250"]
    assert len({len(line) for line in lines[1:4]}) == 1  # header and rows line up
