"""The demo people can click: a Gradio page over the model zoo (``geofm demo``, and the Hugging Face Space).

* :mod:`.app`: the page and its handlers; :func:`geofm_hf.demo.app.serve` runs it (needs the ``demo`` extra,
  ``pip install "geofm_hf[demo]"``: Gradio);
* :mod:`.models`: the models offered (zoo entries and models named on the command line), loaded on first use;
* :mod:`.sections`: reading uploads (pictures, ``.npy``, SEG-Y sections) and labels, writing a section's SEG-Y;
* :mod:`.results`: the tiled prediction, the pictures, the scores and the downloads;
* :mod:`.examples`: the bundled examples (``examples/examples.json``).

Only :mod:`.app` imports Gradio: the rest works without it.
"""
