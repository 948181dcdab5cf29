"""Configuration of the UNet baseline trained from scratch."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ..segmenter import GeoSegmentationConfig


@strict
class GeoUNetConfig(GeoSegmentationConfig):
    r"""
    Configuration of a [`GeoUNetForSemanticSegmentation`], the study's UNet baseline.

    Args:
        widths (`list[int]`, *optional*, defaults to `[32, 64, 128, 256, 256]`):
            Channels of the encoder stages, shallowest first; each later stage halves the resolution.
        Loss and input settings are those of [`GeoSegmentationConfig`].

    Example:

    ```python
    >>> import geofm_hf
    >>> geofm_hf.GeoUNetConfig.for_task("salt").num_labels
    2
    ```
    """

    model_type = "geofm-unet"

    widths: list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.widths is None:
            self.widths = [32, 64, 128, 256, 256]
        super().__post_init__(**kwargs)
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"GeoUNetConfig.widths={self.widths}: expected at least two positive stage widths")

    @property
    def pad_multiple(self) -> int:
        """Each stage after the first halves the resolution, so inputs are padded to this multiple."""
        return 2 ** (len(self.widths) - 1)

    @classmethod
    def for_task(cls, task: str, **kwargs) -> "GeoUNetConfig":
        """Config for a task of `geofm_hf.models.tasks.TASKS` (its classes and default loss)."""
        from ..build import segmenter_config  # the builder imports this module

        return segmenter_config("unet", task, **kwargs)


__all__ = ["GeoUNetConfig"]
