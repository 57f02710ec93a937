"""Data sets, device-resident augmentation and batch mixing for the distillation zoo.

`build_data(cfg, batch_size=..., device=..., seed=...)` returns a `DataBundle` whose `train`
and `val` loaders yield normalised `(images, targets)` already on the device. See `build`,
`device_loader` (small images held on the device) and `large_images` (DataLoader).
"""

from common.data.build import DATASETS, build_data
from common.data.errors import DataError
from common.data.mixing import cutmix, mixup
from common.data.spec import DataBundle, DataSpec, TrainLoader
from common.data.synthetic import superclass_of

__all__ = [
    "DATASETS",
    "DataBundle",
    "DataError",
    "DataSpec",
    "TrainLoader",
    "build_data",
    "cutmix",
    "mixup",
    "superclass_of",
]
