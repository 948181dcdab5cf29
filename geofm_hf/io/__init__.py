"""Survey I/O shared by the dataset converters (``geofm dataset``) and prediction (``geofm predict``).

* :mod:`.volumes`: the ``(inline, crossline, time)`` view of a survey and the :class:`VolumeReader` interface;
* :mod:`.segy`: the SEG-Y reader (geometry from trace headers) and writer (the input's headers);
* :mod:`.arrays`: ``.npy`` and raw ``.dat`` files with one shape/order convention, mapped with bounded memory;
* :mod:`.formats`: opening any input by suffix, creating outputs;
* :mod:`.options`: reader options and the command-line flags both commands share;
* :mod:`.checks`: finite amplitudes, weights and logits, and class-id labels;
* :mod:`.weights`: weight files checked when used (readable, finite, their recorded checksums);
* :mod:`.atomic`: files and folders written beside their target and renamed into place.
"""

from .arrays import (
    RELEASE_BYTES,
    ArrayReader,
    MappedArray,
    MappedFileWriter,
    map_npy,
    open_npy,
    open_raw,
    raw_layout,
)
from .atomic import AtomicOutput, make_temp_path, refuse_existing, staged_folder, swap_in_folder, write_atomically
from .checks import check_finite, check_finite_parameters, check_finite_tensor, to_class_ids
from .formats import INPUT_FORMATS, OUTPUT_FORMATS, create_output, open_input, open_output, open_volume
from .segy import SegyReader, SegyWriter, SurveyGeometry
from .volumes import (
    SECTION_AXES,
    SectionAxis,
    VolumeReader,
    get_axis_name,
    get_section_axes,
    parse_section_key,
    section_key,
)

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "RELEASE_BYTES",
    "SECTION_AXES",
    "ArrayReader",
    "AtomicOutput",
    "MappedArray",
    "MappedFileWriter",
    "SectionAxis",
    "SegyReader",
    "SegyWriter",
    "SurveyGeometry",
    "VolumeReader",
    "create_output",
    "get_axis_name",
    "get_section_axes",
    "make_temp_path",
    "map_npy",
    "open_input",
    "open_npy",
    "open_output",
    "open_raw",
    "open_volume",
    "parse_section_key",
    "raw_layout",
    "refuse_existing",
    "check_finite",
    "check_finite_parameters",
    "check_finite_tensor",
    "section_key",
    "staged_folder",
    "swap_in_folder",
    "to_class_ids",
    "write_atomically",
]
