"""Preprocessing as Keras layers and tf.data transforms, shared by training and serving."""
