"""Lunar craters: images with per-image crater boxes, or a global DEM with a crater catalogue.

``boxes``: ``NAME.png`` with ``NAME.txt`` listing boxes ``ID,X,Y,W,H[,...]`` in pixels (X, Y the top-left corner;
a header naming X, Y, W, H is optional). Each crater is rasterised as the filled ellipse inscribed in its box, with
pixel (r, c) covering [c, c+1) x [r, r+1).

``dem``: an equirectangular GeoTIFF of elevations (read with Pillow: scale/offset from GDAL metadata, nodata, the
body's radius from the GeoKeys) and a CSV catalogue of craters (longitude, latitude in degrees, diameter in km).
Craters are rasterised as the pixels whose centre lies within the crater's radius along the sphere, which widens
discs by 1/cos(latitude) in longitude; the map is then cut into tiles. Pillow reads the whole DEM into memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

from ...models.tasks import TaskSpec
from ..records import Section, register_source
from ._common import (
    find_column,
    list_files,
    numbers,
    only_file,
    pair_up,
    patch_windows,
    parse_patch,
    read_grey,
    read_rows,
    relative,
    require_dir,
    require_file,
    split_folders,
    stems,
)
from ...io.options import as_choice, as_float

logger = logging.getLogger(__name__)

# --- boxes -------------------------------------------------------------------------------------------------------

BOX_COLUMNS = ("x", "y", "w", "h")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_box_file(path: Path) -> np.ndarray:
    """Read a crater box file as a float64 (N, 4) array of ``x, y, w, h`` in pixels.

    Without a header, the columns are ``ID,X,Y,W,H,...``; with one, X, Y, W and H are found by name.
    """
    rows = read_rows(path, "crater box file")
    if rows and not all(_is_number(cell) for cell in rows[0]):
        columns = [find_column(rows[0], (name,), path) for name in BOX_COLUMNS]
        rows = rows[1:]
    else:
        columns = [1, 2, 3, 4]
    boxes = numbers(rows, columns, path).reshape(-1, 4)
    if (boxes[:, 2:] <= 0).any():
        raise ValueError(f"{path}: box with width or height <= 0 at row {int(np.argmax((boxes[:, 2:] <= 0).any(1)))}")
    return boxes


def boxes_outside(shape: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Which of ``boxes`` (x, y, w, h) lie entirely outside a (rows, cols) image: a bool (N,) array."""
    x, y, w, h = boxes.T
    return (x + w <= 0) | (y + h <= 0) | (x >= shape[1]) | (y >= shape[0])


def ellipse_mask(shape: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Rasterise the filled ellipses inscribed in ``boxes`` (x, y, w, h) on a uint8 (rows, cols) mask; boxes outside
    the image (see :func:`boxes_outside`) mark nothing."""
    mask = np.zeros(shape, dtype=np.uint8)
    for x, y, w, h in boxes:
        r0, r1 = max(int(np.floor(y)), 0), min(int(np.ceil(y + h)), shape[0])
        c0, c1 = max(int(np.floor(x)), 0), min(int(np.ceil(x + w)), shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        dy = (np.arange(r0, r1) + 0.5 - (y + h / 2)) / (h / 2)
        dx = (np.arange(c0, c1) + 0.5 - (x + w / 2)) / (w / 2)
        mask[r0:r1, c0:c1] |= (dy[:, None] ** 2 + dx[None, :] ** 2 <= 1.0).astype(np.uint8)
    return mask


def _box_sections(pairs: list[tuple[str, Path, Path]], root: Path) -> Iterator[Section]:
    dropped = total = 0
    for _, image_path, box_path in pairs:
        image = read_grey(image_path)
        boxes = read_box_file(box_path)
        outside = int(boxes_outside(image.shape, boxes).sum()) if len(boxes) else 0
        if outside:
            logger.warning(
                "%s: %d of %d crater box(es) lie outside the %d x %d image %s and are dropped",
                box_path, outside, len(boxes), image.shape[1], image.shape[0], image_path.name,
            )
        dropped, total = dropped + outside, total + len(boxes)
        yield Section(image=image, label=ellipse_mask(image.shape, boxes), source_file=relative(image_path, root))
    if dropped:
        logger.warning("Dropped %d of %d crater box(es) lying outside their images", dropped, total)


@register_source(
    "boxes",
    tasks=("crater",),
    description="Crater images with per-image box files (ID,X,Y,W,H,...) rasterised as inscribed ellipses",
)
def read_boxes(
    input_dir: Path, task: TaskSpec, *, image_suffix: str = ".png", boxes_suffix: str = ".txt"
) -> dict[str, Iterator[Section]]:
    """Read crater images and their box files (same folder, same name), in split folders if there are any.

    Args:
        input_dir: folder of ``NAME.png`` + ``NAME.txt``, or of split folders (``train/``...) holding them.
        task: the crater task.
        image_suffix, boxes_suffix: file suffixes of the images and of the box files.

    Returns:
        Split name -> sections whose label is 1 inside craters.
    """
    root = require_dir(input_dir)
    plan = {}
    for split, folder in split_folders(root).items():
        plan[split] = pair_up(
            stems(list_files(folder, (image_suffix.lower(),), "crater images")),
            stems(list_files(folder, (boxes_suffix.lower(),), "crater box files")),
            str(folder),
            str(folder),
        )
    return {split: _box_sections(pairs, root) for split, pairs in plan.items()}


# --- DEM + catalogue ---------------------------------------------------------------------------------------------

# TIFF tags of GeoTIFF and GDAL, and the GeoKeys read from them.
_PIXEL_SCALE, _TIEPOINT, _GEO_KEYS, _GEO_DOUBLES = 33550, 33922, 34735, 34736
_GDAL_METADATA, _GDAL_NODATA = 42112, 42113
_MODEL_TYPE, _RASTER_TYPE, _SEMI_MAJOR_AXIS = 1024, 1025, 2057
_GEOGRAPHIC, _PIXEL_IS_POINT = 2, 2

CATALOGUE_COLUMNS = {
    "lon_column": ("lon", "long", "longitude"),
    "lat_column": ("lat", "latitude"),
    "diameter_column": ("diam_km", "diameter_km", "diameter (km)", "diameter"),
}


@dataclass
class Dem:
    """An elevation map on an equirectangular lon/lat grid.

    Attributes:
        elevation: float32 (rows, cols) in the file's units after scale/offset; NaN where the file has nodata.
        west, north: longitude and latitude of the outer corner of pixel (0, 0), degrees.
        dlon, dlat: pixel size, degrees.
        radius_km: the body's radius from the GeoKeys, None when the file does not give it.
    """

    path: Path
    elevation: np.ndarray
    west: float
    north: float
    dlon: float
    dlat: float
    radius_km: float | None

    def lat_centres(self) -> np.ndarray:
        return self.north - (np.arange(self.elevation.shape[0]) + 0.5) * self.dlat

    @property
    def wraps(self) -> bool:
        """Whether the grid spans all longitudes, so that craters crossing its edge continue on the other side."""
        return abs(self.elevation.shape[1] * self.dlon - 360.0) < self.dlon


def _geo_keys(tags: dict) -> dict[int, float]:
    """Single-valued GeoKeys stored inline or among the GeoTIFF double parameters."""
    # Pillow returns a lone value rather than a 1-tuple.
    directory, doubles = np.atleast_1d(tags.get(_GEO_KEYS, ())), np.atleast_1d(tags.get(_GEO_DOUBLES, ()))
    keys = {}
    for i in range(4, len(directory) - 3, 4):
        key, location, count, value = (int(v) for v in directory[i : i + 4])
        if location == 0:
            keys[key] = value
        elif location == _GEO_DOUBLES and count == 1:
            keys[key] = float(doubles[value])
    return keys


def _scale_offset(metadata: str | None) -> tuple[float, float]:
    # GDAL keeps band scale and offset as <Item role="scale"> in its XML metadata tag.
    if not metadata:
        return 1.0, 0.0
    roles = {item.get("role"): float(item.text) for item in ElementTree.fromstring(metadata).iter("Item")
             if item.get("role") in ("scale", "offset")}
    return roles.get("scale", 1.0), roles.get("offset", 0.0)


def read_dem(path: Path) -> Dem:
    """Read a single-band geographic (lon/lat) GeoTIFF with Pillow.

    Raises:
        ValueError: unreadable file, several bands, no geo-referencing, or a projected coordinate system.
    """
    try:
        with Image.open(path) as image:
            image.load()
            tags = dict(image.tag_v2)
            raw = np.asarray(image)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the GeoTIFF ({error})") from None
    if raw.ndim != 2:
        raise ValueError(f"{path}: expected a single-band elevation raster, got shape {raw.shape}")
    if _PIXEL_SCALE not in tags or _TIEPOINT not in tags:
        raise ValueError(f"{path}: no GeoTIFF pixel scale / tie point tags: cannot place craters on it")
    keys = _geo_keys(tags)
    if keys.get(_MODEL_TYPE, _GEOGRAPHIC) != _GEOGRAPHIC:
        raise ValueError(f"{path}: projected coordinates; expected an equirectangular longitude/latitude grid")
    dlon, dlat = tags[_PIXEL_SCALE][:2]
    col, row, _, west, north, _ = tags[_TIEPOINT][:6]
    if keys.get(_RASTER_TYPE) == _PIXEL_IS_POINT:  # the tie point is a pixel centre, not its corner
        col, row = col - 0.5, row - 0.5
    scale, offset = _scale_offset(tags.get(_GDAL_METADATA))
    elevation = raw.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if _GDAL_NODATA in tags:
        elevation[raw == float(str(tags[_GDAL_NODATA]).strip("\x00 "))] = np.nan
    radius = keys.get(_SEMI_MAJOR_AXIS)
    return Dem(
        path=path,
        elevation=elevation,
        west=west - col * dlon,
        north=north + row * dlat,
        dlon=dlon,
        dlat=dlat,
        radius_km=None if radius is None else radius / 1000.0,
    )


def read_catalogue(path: Path, columns: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Read a crater catalogue as a float64 (N, 3) array of longitude, latitude (degrees) and diameter (km)."""
    rows = read_rows(path, "crater catalogue")
    if not rows:
        raise ValueError(f"{path}: empty crater catalogue")
    index = [find_column(rows[0], names, path, option) for option, names in columns.items()]
    craters = numbers(rows[1:], index, path)
    if (np.abs(craters[:, 1]) > 90).any() or (craters[:, 2] <= 0).any():
        raise ValueError(f"{path}: latitudes must lie in -90..90 and diameters be > 0")
    return craters


def crater_mask(dem: Dem, craters: np.ndarray, radius_km: float) -> np.ndarray:
    """Rasterise craters (lon, lat, diameter km) as the pixels within their radius on a sphere of ``radius_km``."""
    rows, cols = dem.elevation.shape
    mask = np.zeros((rows, cols), dtype=np.uint8)
    lat_centres = np.radians(dem.lat_centres())
    for lon, lat, diameter in craters:
        angle = diameter / 2.0 / radius_km  # crater radius as an angle at the body's centre, radians
        phi = np.radians(lat)
        r0 = max(int(np.floor((dem.north - lat - np.degrees(angle)) / dem.dlat)), 0)
        r1 = min(int(np.ceil((dem.north - lat + np.degrees(angle)) / dem.dlat)), rows)
        # Half-width in longitude of the circle on the sphere; a circle around a pole spans every longitude.
        sin_half = np.sin(angle) / max(np.cos(phi), 1e-12)
        half = np.degrees(np.arcsin(sin_half)) if sin_half < 1 else 180.0
        x = ((lon - dem.west) % 360.0 if dem.wraps else lon - dem.west) / dem.dlon
        c = np.arange(int(np.floor(x - half / dem.dlon)), int(np.ceil(x + half / dem.dlon)) + 1)
        c = np.unique(c % cols) if dem.wraps else c[(c >= 0) & (c < cols)]
        if r0 >= r1 or c.size == 0:
            continue
        dlon = np.radians(dem.west + (c + 0.5) * dem.dlon - lon)
        lat_rows = lat_centres[r0:r1, None]
        cos_distance = np.sin(lat_rows) * np.sin(phi) + np.cos(lat_rows) * np.cos(phi) * np.cos(dlon[None, :])
        mask[r0:r1, c] |= (cos_distance >= np.cos(angle)).astype(np.uint8)
    return mask


def hillshade(dem: Dem, radius_km: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Shaded relief in 0..1 lit from ``azimuth`` (degrees clockwise from north) at ``altitude`` above the horizon.

    Pixel spacing in metres shrinks with cos(latitude) east-west, so slopes are taken on the true ground distance;
    elevations are assumed to be in metres.
    """
    metres_per_degree = np.radians(1.0) * radius_km * 1000.0
    dy = dem.dlat * metres_per_degree
    dx = dem.dlon * metres_per_degree * np.maximum(np.cos(np.radians(dem.lat_centres())), 1e-3)[:, None]
    d_row, d_col = np.gradient(dem.elevation.astype(np.float64))
    east, north = d_col / dx, -d_row / dy  # rows run southwards
    az, alt = np.radians(azimuth), np.radians(altitude)
    lit = (-east * np.sin(az) * np.cos(alt) - north * np.cos(az) * np.cos(alt) + np.sin(alt)) / np.sqrt(
        1.0 + east**2 + north**2
    )
    return np.clip(lit, 0.0, 1.0).astype(np.float32)


def elevation(dem: Dem, radius_km: float) -> np.ndarray:
    """The elevations themselves (in the file's units after scale and offset)."""
    return dem.elevation


# Images a DEM tile can show.
LAYERS: dict[str, Callable[[Dem, float], np.ndarray]] = {"elevation": elevation, "hillshade": hillshade}


def _dem_tiles(
    dem: Dem, craters: np.ndarray, radius_km: float, layer: str, tiles: tuple[tuple[int, int], tuple[int, int]],
    max_lat: float, source: str,
) -> Iterator[Section]:
    image = LAYERS[layer](dem, radius_km)
    label = crater_mask(dem, craters, radius_km)
    keep = np.abs(dem.lat_centres()) <= max_lat
    image, label = image[keep], label[keep]
    skipped = 0
    for rows, cols in patch_windows(image.shape, tiles[0], tiles[1], source):
        tile = image[rows, cols]
        if not np.isfinite(tile).all():
            skipped += 1  # nodata holes: no elevation to learn from
            continue
        yield Section(image=tile.copy(), label=label[rows, cols].copy(), source_file=source)
    if skipped:
        logger.warning("%s: skipped %d tile(s) containing nodata", source, skipped)


@register_source(
    "dem",
    tasks=("crater",),
    description="Equirectangular DEM GeoTIFF + crater catalogue CSV (lon, lat, diameter km) rasterised as discs",
)
def read_dem_catalogue(
    input_dir: Path,
    task: TaskSpec,
    *,
    dem: str | None = None,
    catalogue: str | None = None,
    lon_column: str | None = None,
    lat_column: str | None = None,
    diameter_column: str | None = None,
    radius_km: str | float | None = None,
    layer: str = "elevation",
    tile: str | int = 256,
    stride: str | None = None,
    max_lat: str | float = 90.0,
) -> dict[str, Iterator[Section]]:
    """Cut a DEM into tiles labelled with the craters of a catalogue.

    Args:
        input_dir: folder holding the GeoTIFF and the catalogue.
        task: the crater task.
        dem: the GeoTIFF file (default: the only ``.tif``/``.tiff`` in ``input_dir``).
        catalogue: the catalogue CSV (default: the only ``.csv``); any line ends (CR, LF, CRLF).
        lon_column, lat_column, diameter_column: catalogue column names (default: the usual names, e.g. ``Lon``,
            ``Long``, ``Longitude``; ``Lat``; ``Diam_km``, ``Diameter (km)``). Diameters are in km.
        radius_km: the body's radius (default: the GeoTIFF's semi-major axis; the Moon is 1737.4).
        layer: image of each tile, ``elevation`` or ``hillshade``.
        tile, stride: tile size ``H,W`` (or one number) and step (default: the tile size).
        max_lat: keep only rows within this latitude of the equator (catalogues often stop at +-60 degrees).

    Returns:
        ``{"train": tiles}``; tiles with nodata pixels are skipped.
    """
    root = require_dir(input_dir)
    dem_path = require_file(root / dem, "DEM") if dem else only_file(root, (".tif", ".tiff"), "dem", "GeoTIFFs")
    csv_path = (
        require_file(root / catalogue, "crater catalogue")
        if catalogue
        else only_file(root, (".csv",), "catalogue", "crater catalogues")
    )
    given = {"lon_column": lon_column, "lat_column": lat_column, "diameter_column": diameter_column}
    columns = {option: (given[option],) if given[option] else names for option, names in CATALOGUE_COLUMNS.items()}
    craters = read_catalogue(csv_path, columns)
    raster = read_dem(dem_path)
    radius = raster.radius_km if radius_km is None else as_float("radius_km", radius_km)
    if radius is None or radius <= 0:
        raise ValueError(f"{dem_path}: no body radius in its GeoKeys; pass radius_km= (the Moon: 1737.4)")
    tiles = parse_patch(tile, stride, name="tile")
    layer_name = as_choice("layer", layer, tuple(LAYERS))
    source = relative(dem_path, root)
    return {"train": _dem_tiles(raster, craters, radius, layer_name, tiles, as_float("max_lat", max_lat), source)}
