"""neuropathology: a brain-tumour MRI classifier and the course that teaches from it.

The package reads top to bottom in the order data flows through it::

    data      -> discovery, image I/O, splits, audit, the tf.data pipeline, synthetic MRI
    models    -> the network (base + classification head)
    training  -> two-stage training, callbacks, the run directory, the Predictor
    utils     -> small helpers shared by all of the above (seeding, atomic files, tables)

Importing the package does not import TensorFlow; the modules that need it do.
"""

__version__ = "0.1.0"
