"""What a band description says a band holds.

GDAL band descriptions (``gdalinfo``'s ``Description``, rasterio's
``descriptions``) come in three forms that scene inference reads:

- a name: ``red``, ``Blue (B2)``, ``band_2_blue``, ``Near infrared``,
  ``Red Edge 1``, ``R`` (:func:`band_name`);
- a sensor band designation: ``B02`` (zero-padded: Sentinel-2 only),
  ``B2``, ``B8A``, ``SR_B4`` / ``TOA_B4`` (Landsat Collection 2 names).
  Its meaning depends on the sensor: ``B2`` is blue for Sentinel-2 and
  Landsat 8-9 (OLI) and green for Landsat 4-7 (TM / ETM+)
  (:data:`SENSOR_BANDS`, :func:`designation_readings`);
- anything else (``Band 1``, empty): says nothing.

Sources of the tables: ESA Sentinel-2 MSI band list (B1-B12, B8A); USGS
Landsat 8-9 OLI/TIRS and Landsat 4-5 TM / 7 ETM+ band designations.
"""
import re
from typing import Dict, Optional, Sequence, Tuple

#: Band number -> name per sensor family; names compare with the models'
#: band orders (``red``, ``green``, ``blue``, ``nir``).
SENSOR_BANDS: Dict[str, Dict[str, str]] = {
    'Sentinel-2': {
        '1': 'coastal', '2': 'blue', '3': 'green', '4': 'red',
        '5': 'rededge', '6': 'rededge', '7': 'rededge', '8': 'nir',
        '8a': 'nir', '9': 'water vapour', '10': 'cirrus', '11': 'swir',
        '12': 'swir'},
    'Landsat 8-9': {
        '1': 'coastal', '2': 'blue', '3': 'green', '4': 'red', '5': 'nir',
        '6': 'swir', '7': 'swir', '8': 'pan', '9': 'cirrus', '10': 'tir',
        '11': 'tir'},
    'Landsat 4-7': {
        '1': 'blue', '2': 'green', '3': 'red', '4': 'nir', '5': 'swir',
        '6': 'tir', '7': 'swir', '8': 'pan'},
}

_DESIGNATION = re.compile(r'^(?:(sr|toa|st)_)?b(0?)(\d{1,2}a?)$')
#: phrases first: "red edge" is not red, "coastal blue" not blue
_PHRASES = (('rededge', ({'edge'}, {'rededge'})),
            ('coastal', ({'coastal'}, {'aerosol'})),
            ('swir', ({'swir'}, {'short', 'infrared'}, {'swir1'},
                      {'swir2'})),
            ('nir', ({'nir'}, {'near', 'infrared'}, {'nearinfrared'})),
            ('pan', ({'pan'}, {'panchromatic'})),
            ('tir', ({'tir'}, {'thermal'})))
_COLOURS = ('red', 'green', 'blue')
_LETTERS = {'r': 'red', 'g': 'green', 'b': 'blue'}


def band_name(description: str, vocabulary: Sequence[str] = ()
              ) -> Optional[str]:
    """The band name a description gives, lower case, or None.

    ``vocabulary`` (e.g. the models' band names) matches whole
    descriptions first (``amplitude``, ``hh_re``); then phrases (``Red Edge
    1`` -> ``rededge``, ``Near infrared`` -> ``nir``), then one colour word
    among the description's words (``Blue (B2)`` -> ``blue``), then a
    description that is one of the letters R, G, B. Sensor designations
    (``B2``) are not names: :func:`designation_readings`.

    >>> band_name('Blue (B2)'), band_name('band_4_red'), band_name('B2')
    ('blue', 'red', None)
    """
    text = (description or '').strip().lower()
    if not text:
        return None
    if text in {str(v).lower() for v in vocabulary}:
        return text
    if text in _LETTERS:
        return _LETTERS[text]
    words = set(w for w in re.split(r'[^a-z0-9]+', text) if w)
    for name, forms in _PHRASES:
        if any(form <= words for form in forms):
            return name
    colours = [c for c in _COLOURS if c in words]
    if len(colours) == 1:
        return colours[0]
    return None


def designation(description: str) -> Optional[Tuple[str, bool]]:
    """``(band number, zero-padded)`` of a sensor band designation
    (``B02`` -> ``('2', True)``, ``SR_B4`` -> ``('4', False)``, ``B8A`` ->
    ``('8a', False)``), else None."""
    m = _DESIGNATION.match((description or '').strip().lower())
    if m is None:
        return None
    return m.group(3).lstrip('0') or '0', bool(m.group(2))


def designation_readings(designations: Sequence[Optional[Tuple[str, bool]]]
                         ) -> Dict[str, Tuple[Optional[str], ...]]:
    """Per sensor family whose band numbering has every designated band,
    the band names of ``designations`` (None where a band is not a
    designation). A zero-padded one (``B02``) is Sentinel-2's form only.

    >>> designation_readings([designation('B2'), designation('B3')])
    {'Sentinel-2': ('blue', 'green'), 'Landsat 8-9': ('blue', 'green'), \
'Landsat 4-7': ('green', 'red')}
    """
    found = [d for d in designations if d is not None]
    out = {}
    for sensor, table in SENSOR_BANDS.items():
        if any(padded and sensor != 'Sentinel-2' for _, padded in found):
            continue
        if all(number in table for number, _ in found):
            out[sensor] = tuple(None if d is None else table[d[0]]
                                for d in designations)
    return out


__all__ = ['SENSOR_BANDS', 'band_name', 'designation', 'designation_readings']
