"""A hand-written DeepInversion loop with SSD-KD's φ and PriorityBuffer plugged in.

Run it with ``python docs/examples/deepinversion_plus_ssdkd.py``; the test suite runs it too.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.hooks import BNStatsHook
from ssdkd.losses import DiversityDifficultyModulator, bn_stat_loss, kd_kl_div, weighted_mean
from ssdkd.sampling import PriorityBuffer


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


torch.manual_seed(0)
teacher, student = net().eval(), net()  # use your trained teacher here
# The defaults are SSD-KD's: weights normalised to mean 1 per batch, and φ reading the
# target label's probability and the target class's share of the buffer.
buffer = PriorityBuffer(512, generator=torch.Generator().manual_seed(0))
phi = DiversityDifficultyModulator(gamma=2.0)
T = 4.0  # KD temperature
student_opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)

for batch in range(4):
    x = torch.randn(64, 1, 8, 8, requires_grad=True)  # DeepInversion optimises pixels
    y = torch.randint(0, 10, (64,))
    opt = torch.optim.Adam([x], lr=0.1)
    for _ in range(20):
        with BNStatsHook(teacher) as bn:
            logits = teacher(x)
            counts = buffer.class_counts("labels", 10)
            weights = phi.task_weights(logits.detach(), counts, y)  # + φ, mean 1
            loss = bn_stat_loss(bn.stats) + weighted_mean(
                F.cross_entropy(logits, y, reduction="none"), weights
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
    buffer.extend(images=x.detach(), labels=logits.argmax(dim=1))  # + small buffer
    for _ in range(10):  # + priority-sampled KD with importance weights
        s = buffer.sample(32)
        with torch.no_grad():
            t = teacher(s.data["images"])
        kl = kd_kl_div(student(s.data["images"]), t, temperature=T)  # KL · T²
        student_opt.zero_grad()
        weighted_mean(kl, s.weights).backward()
        student_opt.step()
        delta = s.weights * kl.detach() / T**2  # SSD-KD's priority δ = w · KL
        buffer.update_priorities(s.indices, delta, generations=s.generations)
    print(f"batch {batch}: inversion loss {loss.item():.3f}, buffer {len(buffer)} images")
