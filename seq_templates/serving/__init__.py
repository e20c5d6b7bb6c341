"""A TensorFlow Serving–compatible REST server for the exports of every template.

``seq-templates serve RUN`` answers TF Serving's REST API (status, metadata,
predict in the row and columnar formats) from the SavedModel's signatures alone:

- :mod:`config_files`: which models to serve and how to batch (flags, or TF
  Serving's ``models.config`` and batching parameters files);
- :mod:`repository`: version folders found, loaded, hot-swapped and reported;
- :mod:`json_tensors`: request bodies to input arrays, outputs to answers;
- :mod:`batching`: concurrent requests merged into one model call;
- :mod:`limits`: what one request may ask, per model (flags, the model config file,
  the bounds an export records);
- :mod:`chunking`: a long generation run as several calls, so it can be stopped;
- :mod:`app`: the ASGI app (Starlette) routing the API;
- :mod:`server`: the ``serve`` options and the uvicorn server;
- :mod:`error_codes`: TF Serving's error statuses and HTTP codes.
"""
