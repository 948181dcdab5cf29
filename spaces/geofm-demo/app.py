"""The geofm_hf demo as a Hugging Face Space: the same page as ``geofm demo``, offering the zoo's models.

The Space runs ``python app.py``; it sets ``GRADIO_SERVER_NAME=0.0.0.0`` and the port itself, which
:func:`geofm_hf.demo.app.serve` leaves to Gradio.
"""

from geofm_hf.demo.app import serve

if __name__ == "__main__":
    serve()
