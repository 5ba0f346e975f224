"""DIRT-T's update recomputed by hand (Shu et al., ICLR 2018, eq. 9-10): the teacher, its re-anchoring."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F_

from tests.methods.test_vada import assert_same_weights, batch, descend, kl, nets, vat_by_hand
from uda.config import TrainConfig
from uda.methods.dirt_t import DirtT, DirtTConfig

TRAIN = TrainConfig.model_validate({"steps": 10, "ema": 0.5, "schedule": {"name": "constant"},
                                    "optimizer": {"name": "adam", "lr": 0.01, "betas": [0.5, 0.999]}})


def test_one_update_equals_the_papers_by_hand_and_the_teacher_stays_fixed():
    cfg = DirtTConfig(target_weight=0.3, kl_weight=0.7, radius=2.0, anchor_every=2)
    n, b = nets(), batch()
    ref = copy.deepcopy(n)
    method = DirtT(n, cfg, TRAIN, 10)
    torch.manual_seed(7)
    method.train_step(b, 0.0)

    torch.manual_seed(7)
    teacher = copy.deepcopy(ref)  # θ(n−1): the start
    opt = torch.optim.Adam([*ref["F"].parameters(), *ref["C"].parameters()], lr=0.01, betas=(0.5, 0.999))
    h = lambda x: ref["C"](ref["F"](x))  # noqa: E731
    l_t = h(b.x_t)
    with torch.no_grad():
        t_logits = teacher["C"](teacher["F"](b.x_t))
    entropy = -(F_.softmax(l_t, 1) * F_.log_softmax(l_t, 1)).sum(1).mean()
    loss = 0.7 * kl(t_logits, l_t) + 0.3 * (entropy + vat_by_hand(h, b.x_t, l_t, 2.0))
    descend(opt, loss)
    assert_same_weights(n, ref, ("F", "C"))
    start = [p.clone() for p in teacher["C"].parameters()]
    assert all(torch.equal(a, s) for a, s in zip(method.teacher[1].parameters(), start, strict=True))

    method.train_step(b, 0.1)  # step 2: the teacher is still the start
    assert all(torch.equal(a, s) for a, s in zip(method.teacher[1].parameters(), start, strict=True))
    method.train_step(b, 0.2)  # step 3 re-anchors it to the weight average first
    average = method.ema.nets["C"]
    assert not torch.equal(next(method.teacher[1].parameters()), start[0])
    assert all(not p.requires_grad for p in method.teacher.parameters())
    assert next(average.parameters()).shape == start[0].shape
