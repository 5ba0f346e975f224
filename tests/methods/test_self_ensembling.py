"""Self-ensembling's update recomputed by hand (French et al., ICLR 2018, §3): the confidence mask, the
class-balance loss, the mean teacher."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F_

from tests.methods import test_vada
from uda.config import AugmentConfig, TrainConfig
from uda.methods import Batch
from uda.methods.self_ensembling import SelfEnsembling, SelfEnsemblingConfig, consistency_loss


def nets():
    return {k: n.float() for k, n in test_vada.nets().items()}


def batch():
    b = test_vada.batch()
    return Batch(b.x_s.float(), b.y_s, b.x_t.float())


TRAIN = TrainConfig.model_validate({"steps": 10, "ema": 0.9, "schedule": {"name": "constant"},
                                    "optimizer": {"name": "adam", "lr": 0.01}})


def test_one_update_equals_the_papers_by_hand_and_the_teacher_is_the_average():
    cfg = SelfEnsemblingConfig(unsup_weight=3.0, confidence_threshold=0.52, class_balance=0.5)
    n, b = nets(), batch()
    ref = copy.deepcopy(n)
    method = SelfEnsembling({k: n[k] for k in ("F", "C")}, cfg, TRAIN, 10)
    method.train_step(b, 0.0)  # no augmentation here: both views of x_t are x_t

    teacher = copy.deepcopy(ref)
    opt = torch.optim.Adam([*ref["F"].parameters(), *ref["C"].parameters()], lr=0.01)
    z = F_.softmax(ref["C"](ref["F"](b.x_t)), 1)
    z_teacher = F_.softmax(teacher["C"](teacher["F"](b.x_t)), 1).detach()
    mask = torch.tensor([float(row.max() > 0.52) for row in z_teacher])
    assert 0 < mask.sum() < len(mask)  # the threshold keeps some, not all
    squared = sum(mask[i] * ((z[i] - z_teacher[i]) ** 2).mean() for i in range(len(z))) / len(z)
    mean = z.mean(0)
    bce = -((1 / 3) * torch.log(mean + 1e-6) + (2 / 3) * torch.log(1 - mean + 1e-6))  # BCE(z̄_k, 1/K)
    loss = F_.cross_entropy(ref["C"](ref["F"](b.x_s)), b.y_s) + 3.0 * (squared + 0.5 * mask.mean() * 3 * bce.mean())
    test_vada.descend(opt, loss)
    test_vada.assert_same_weights(n, ref, ("F", "C"))
    for k in ("F", "C"):
        # θ̄ ← 0.9·θ̄ + 0.1·θ, from θ̄ = the start
        for avg, start, live in zip(method.ema.nets[k].parameters(), teacher[k].parameters(), ref[k].parameters(),
                                    strict=True):
            torch.testing.assert_close(avg, 0.9 * start + 0.1 * live)
            assert not avg.requires_grad


def test_predictions_below_the_threshold_are_masked_out():
    z = torch.tensor([[0.5, 0.5], [0.1, 0.9]])
    confident = torch.tensor([[0.6, 0.4], [0.01, 0.99]])
    loss, mask = consistency_loss(z, confident, threshold=0.95, class_balance=0.0)
    assert mask.tolist() == [0.0, 1.0]
    torch.testing.assert_close(loss, ((z[1] - confident[1]) ** 2).mean() / 2)
    assert consistency_loss(z, confident, threshold=0.999, class_balance=1.0)[0].item() == 0.0  # none confident


def test_with_augmentation_the_student_and_teacher_see_different_views():
    train = TrainConfig.model_validate({**TRAIN.model_dump(), "augment": {"noise_std": 0.5}})
    seen = []
    n = nets()
    method = SelfEnsembling({k: n[k] for k in ("F", "C")}, SelfEnsemblingConfig(), train, 10)
    method.nets["F"].register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    method.ema.nets["F"].register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    b = batch()
    method.train_step(b, 0.0)
    x_s, x_t_student, x_t_teacher = seen
    assert x_s.shape == b.x_s.shape and not torch.equal(x_s, b.x_s)
    assert not torch.equal(x_t_student, x_t_teacher) and not torch.equal(x_t_student, b.x_t)
    assert AugmentConfig().enabled is False
