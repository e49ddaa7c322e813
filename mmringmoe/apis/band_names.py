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
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

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
        '6': 'tir', '6_vcid_1': 'tir', '6_vcid_2': 'tir', '7': 'swir',
        '8': 'pan'},
    'MODIS': {
        '1': 'red', '2': 'nir', '3': 'blue', '4': 'green', '5': 'swir',
        '6': 'swir', '7': 'swir'},
}
#: the designation forms each family writes (Landsat Collection 2 Level-2:
#: SR_B1..SR_B7 and ST_B10 for Landsat 8-9; SR_B1..SR_B5, SR_B7 and ST_B6
#: for Landsat 4-7; MODIS surface reflectance: sur_refl_b01..b07;
#: Sentinel-2: B01 .. B12, B8A, also S2A_B02 and B02_10m)
_FORMS = {
    'Sentinel-2': {'': None, 's2': None},
    'Landsat 8-9': {'': None, 'sr': {'1', '2', '3', '4', '5', '6', '7'},
                    'st': {'10'}},
    'Landsat 4-7': {'': None, 'sr': {'1', '2', '3', '4', '5', '7'},
                    'st': {'6'}},
    'MODIS': {'modis': None},
}


class Designation(NamedTuple):
    number: str    # '2', '8a', '6_vcid_1'
    padded: bool   # B02: Sentinel-2's form (not MODIS, whose form is its own)
    form: str      # '', 's2', 'sr', 'st', 'modis'


_DESIGNATION = re.compile(
    r'^(?:(?P<prefix>sr|st|s2a|s2b|sur_refl)_)?b(?P<pad>0?)'
    r'(?P<num>6_vcid_[12]|\d{1,2}a?)(?:_(?P<res>10|20|60)m)?$')
_WAVELENGTH = re.compile(r'(\d+(?:\.\d+)?)\s*(nm|um|µm|μm)\b')
#: centre wavelength (nm) -> name, upper bounds
_RANGES = ((450, 'coastal'), (510, 'blue'), (590, 'green'), (620, None),
           (690, 'red'), (760, 'rededge'), (1000, 'nir'), (2500, 'swir'),
           (3000, None), (15000, 'tir'))
#: phrases first: "red edge" is not red, "coastal blue" not blue
_PHRASES = (('rededge', ({'edge'}, {'rededge'})),
            ('coastal', ({'coastal'}, {'aerosol'})),
            ('swir', ({'swir'}, {'short', 'infrared'}, {'swir1'},
                      {'swir2'})),
            ('nir', ({'nir'}, {'near', 'infrared'}, {'nearinfrared'})),
            ('pan', ({'pan'}, {'panchromatic'})),
            ('tir', ({'tir'}, {'thermal'})))
#: colour words (English, German, French, Spanish, Italian, Portuguese,
#: Chinese)
_COLOURS = {
    'red': {'red', 'rot', 'rouge', 'rojo', 'rosso', 'vermelho', '红', '紅'},
    'green': {'green', 'grün', 'gruen', 'vert', 'verde', '绿', '綠'},
    'blue': {'blue', 'blau', 'bleu', 'azul', 'blu', '蓝', '藍'},
}
_LETTERS = {'r': 'red', 'g': 'green', 'b': 'blue'}
_GENERIC = re.compile(r'^(?:band|layer|channel)[\s_-]*(\d+)$')


def band_name(description: str, vocabulary: Sequence[str] = ()
              ) -> Optional[str]:
    """The band name a description gives, lower case, or None.

    ``vocabulary`` (e.g. the models' band names) matches whole
    descriptions first (``amplitude``, ``hh_re``); then phrases (``Red Edge
    1`` -> ``rededge``, ``Near infrared`` -> ``nir``), then one colour word
    among the description's words in seven languages (``Blue (B2)``,
    ``Rot``, ``蓝`` -> ``blue`` / ``red`` / ``blue``), then a description that
    is one of the letters R, G, B, then a centre wavelength (``490nm``,
    ``Band 2 (0.665 um)``: coastal < 450 nm <= blue < 510 <= green < 590;
    620 <= red < 690 <= red edge < 760 <= NIR < 1000 <= SWIR < 2500).
    Sensor designations (``B2``) are not names:
    :func:`designation_readings`.

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
    words = set(w for w in re.split(r'[\W_]+', text) if w)
    for name, forms in _PHRASES:
        if any(form <= words for form in forms):
            return name
    colours = [c for c, forms in _COLOURS.items() if words & forms]
    if len(colours) == 1:
        return colours[0]
    m = _WAVELENGTH.search(text)
    if m:
        nm = float(m.group(1)) * (1 if m.group(2) == 'nm' else 1000)
        for upper, name in _RANGES:
            if nm < upper:
                return name
    return None


def is_generic(description: str, index: int) -> bool:
    """``Band 3`` / ``band_3`` / ``Layer 3`` on band 3 (1-based): a label
    that says only where the band is."""
    m = _GENERIC.match((description or '').strip().lower())
    return m is not None and int(m.group(1)) == index


def designation(description: str) -> Optional[Designation]:
    """The sensor band designation a description is (``B02`` ->
    ``('2', True, '')``, ``SR_B4`` -> ``('4', False, 'sr')``, ``B8A``,
    ``B6_VCID_1``, ``S2A_B02`` / ``B02_10m`` (Sentinel-2), ``sur_refl_b01``
    (MODIS)), else None."""
    m = _DESIGNATION.match((description or '').strip().lower())
    if m is None:
        return None
    prefix = m.group('prefix') or ''
    form = {'sr': 'sr', 'st': 'st', 'sur_refl': 'modis'}.get(
        prefix, 's2' if prefix or m.group('res') else '')
    number = m.group('num')
    if number[0].isdigit() and '_' not in number:
        number = number.lstrip('0') or '0'
    return Designation(number, bool(m.group('pad')) and form != 'modis',
                       form)


def _fits(sensor: str, d: Designation) -> bool:
    forms = _FORMS[sensor]
    if d.form not in forms or d.number not in SENSOR_BANDS[sensor]:
        return False
    if d.padded and sensor != 'Sentinel-2':
        return False
    allowed = forms[d.form]
    return allowed is None or d.number in allowed


def designation_readings(designations: Sequence[Optional[Designation]]
                         ) -> Dict[str, Tuple[Optional[str], ...]]:
    """Per sensor family whose band designations include every one given,
    the band names of ``designations`` (None where a band is not a
    designation). ``B02`` is Sentinel-2's form, ``SR_B6`` Landsat 8-9's
    (Landsat 4-7's band 6 is ``ST_B6``), ``B6_VCID_1`` Landsat 7's.

    >>> designation_readings([designation('B2'), designation('B3')])
    {'Sentinel-2': ('blue', 'green'), 'Landsat 8-9': ('blue', 'green'), \
'Landsat 4-7': ('green', 'red')}
    """
    found = [d for d in designations if d is not None]
    out = {}
    for sensor, table in SENSOR_BANDS.items():
        if found and all(_fits(sensor, d) for d in found):
            out[sensor] = tuple(None if d is None else table[d.number]
                                for d in designations)
    return out


__all__ = ['SENSOR_BANDS', 'Designation', 'band_name', 'designation',
           'designation_readings', 'is_generic']
