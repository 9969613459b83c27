"""Conversions out of spikevae and back into it, one module per tool (as SpikeInterface's ``exporters/``).

- :mod:`.phy`: a phy template-GUI folder, and the curated sorting back from it;
- :mod:`.nwb`: an NWB file (pynwb) with the electrodes and Units tables;
- :mod:`.spikeinterface`: SpikeInterface sortings and recordings, both ways.

Each tool's package is imported only when its export is asked for.
"""
