"""Published target accuracies for the protocols this project runs, to print beside its own numbers.

Only figures for the same source → target pair are listed; the protocols can still differ (networks,
budgets, subsets), which the `protocol` note says.
"""

from __future__ import annotations

DANN_JMLR = "Ganin et al., JMLR 2016, Table 2"
GTA_CVPR = "Sankaranarayanan et al., CVPR 2018, Table 1"
TLLIB = "Transfer-Learning-Library, digits table"
TLLIB_PROTOCOL = "LeNet 28×28, 50,000 steps of 128+128, best epoch on target test"
DIRTT = "Shu et al., ICLR 2018, Table 2"
DIRTT_PROTOCOL = "9-layer small net, instance norm, 80,000 steps of 64+64"
SELF_ENSEMBLING = "French et al., ICLR 2018, Table 1"

# (source, target) → method → [(accuracy, std or None, citation, protocol)]
PUBLISHED: dict[tuple[str, str], dict[str, list[tuple[float, float | None, str, str]]]] = {
    ("mnist", "mnist_m"): {
        "source_only": [(0.5225, None, DANN_JMLR, "DANN MNIST net")],
        "dann": [(0.7666, None, DANN_JMLR, "DANN MNIST net")],
        "vada": [(0.977, None, DIRTT, DIRTT_PROTOCOL)],
        "dirt_t": [(0.989, None, DIRTT, DIRTT_PROTOCOL)],
    },
    ("svhn", "mnist"): {
        "source_only": [(0.5490, None, DANN_JMLR, "DANN SVHN net")],
        "dann": [(0.7385, None, DANN_JMLR, "DANN SVHN net")],
        "gta": [(0.924, 0.009, GTA_CVPR, "full sets")],
    },
    ("mnist", "usps"): {
        "gta": [(0.953, 0.007, GTA_CVPR, "full sets"), (0.928, 0.009, GTA_CVPR, "2,000 MNIST / 1,800 USPS")],
        "dann": [(0.917, None, TLLIB, TLLIB_PROTOCOL)],
        "cdan": [(0.960, None, TLLIB, TLLIB_PROTOCOL)],
        "mcc": [(0.951, None, TLLIB, TLLIB_PROTOCOL)],
        "adda": [(0.945, None, TLLIB, TLLIB_PROTOCOL)],
        "mcd": [(0.941, None, TLLIB, TLLIB_PROTOCOL)],
        "self_ensembling": [(0.983, None, SELF_ENSEMBLING, "their 32-64-256 net at 28×28, ~23,000 steps of 64+64")],
    },
    ("usps", "mnist"): {
        "gta": [(0.908, 0.013, GTA_CVPR, "full sets")],
    },
}


def published(source: str, target: str, method: str) -> list[tuple[float, float | None, str, str]]:
    return PUBLISHED.get((source, target), {}).get(method, [])
