import pytest
import torch
from torch import nn

from vggnet.train.lookahead import Lookahead


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_decay_rises_with_the_cube_of_progress():
    la = Lookahead(_net(), every=5, total=100)
    assert la.decay(0) == 0 and la.decay(50) == pytest.approx(0.95**5 / 8) and la.decay(100) == pytest.approx(0.95**5)


def test_every_kth_step_sets_weights_and_average_to_their_blend():
    net = _net()
    la = Lookahead(net, every=5, total=100)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    for step in range(1, 51):
        with torch.no_grad():
            net[0].weight.add_(1.0)  # an "optimizer step"
            net[1].running_mean.add_(1.0)  # BatchNorm statistics are averaged too
        before = net[0].weight.clone()
        la.after_step(step)
        if step % 5:
            assert torch.equal(net[0].weight, before)  # untouched between pulls
    # by hand: the average follows avg = d * avg + (1 - d) * w at each pull, and w = avg after it
    w, avg = start["0.weight"].clone(), start["0.weight"].clone()
    for step in range(1, 51):
        w = w + 1
        if step % 5 == 0:
            avg = la.decay(step) * avg + (1 - la.decay(step)) * w
            w = avg.clone()
    torch.testing.assert_close(net[0].weight, w)
    assert net[0].weight.sub(start["0.weight"]).mean() < 50  # averaging held it back from the +50 it moved
    assert net[1].running_mean.sub(start["1.running_mean"]).mean() < 50
    assert torch.equal(net[1].num_batches_tracked, start["1.num_batches_tracked"])  # integers are left alone


def test_the_last_step_sets_the_net_to_the_average_and_state_round_trips():
    net = _net()
    la = Lookahead(net, every=5, total=10)
    for step in range(1, 10):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        la.after_step(step)
    saved = {k: v.clone() for k, v in la.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    la.after_step(10)
    assert torch.equal(net[0].weight, la.average["0.weight"])  # the final pull: decay 1, the net is the average
    assert torch.equal(la.average["0.weight"], saved["0.weight"])
    other = Lookahead(_net(), every=5, total=10)
    other.load_state_dict(saved)
    assert all(torch.equal(other.average[k], saved[k]) for k in saved)


def test_a_run_shorter_than_one_interval_keeps_its_trained_weights():
    net = _net()
    la = Lookahead(net, every=5, total=3)  # no pull ever happens: the average is still the start
    for step in range(1, 4):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        la.after_step(step)
    assert torch.equal(net[0].weight, la.average["0.weight"] + 3)  # not reset to the starting weights
