"""Running the pipeline on one machine: process supervision (``supervisor``), bringing
it up in order (``startup``) and the figures ``shiftright status`` shows (``status``)."""
