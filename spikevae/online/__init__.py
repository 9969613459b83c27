"""Online classification: label new data with a finished run's model, chunk by chunk, no refitting.

``load_online_model(RUN)`` rebuilds the run's feature model and per-electrode classifiers;
``classify_recording(model, rec)`` or ``OnlineSorter(model).run(chunks)`` label spikes as
chunks arrive.
"""
from .model import ElectrodeClassifier, OnlineModel, load_online_model
from .stream import (Chunk, ChunkLabels, OnlineResult, OnlineSorter, agreement_with, classify_recording,
                     recording_chunks)

__all__ = ["Chunk", "ChunkLabels", "ElectrodeClassifier", "OnlineModel", "OnlineResult", "OnlineSorter",
           "agreement_with", "classify_recording", "load_online_model", "recording_chunks"]
