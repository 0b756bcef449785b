"""napari plugin (npe2): open RI tomograms and ri2fl outputs, infer and segment in place.

The manifest is ``napari.yaml`` (entry point ``ri2fl``). napari itself is optional
(``pip install ri2fl[napari]``): nothing here imports it, so the reader and the widgets'
compute functions also work, and are tested, without a display. The dock widgets
(``_qt_widgets``) and :func:`prefer_ri2fl_reader` import napari when used.
"""

from ._layers import LayerData, layer_for, volume_layers
from ._preferences import prefer_ri2fl_reader
from ._reader import can_read, get_reader, read_layers
from ._widget import RunCancelledError, RunControl, predict_layer, segment_layer

__all__ = ["LayerData", "RunCancelledError", "RunControl", "can_read", "get_reader",
           "layer_for", "predict_layer", "prefer_ri2fl_reader", "read_layers", "segment_layer",
           "volume_layers"]
