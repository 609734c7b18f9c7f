"""Convert timm, pycls, tf_keras or Keras weights into a regnet_tf `.weights.h5` file.

    python launch/convert.py --from timm --model regnety_040 --input model.safetensors --output regnety_040.weights.h5
    python launch/convert.py --from timm --model efficientnet_b0 --arch tf_efficientnet_b0 --input m.safetensors \
        --output tf_efficientnet_b0.weights.h5                     # TF-trained: TensorFlow padding, BN epsilon 1e-3
    python launch/convert.py --from pycls --model regnetx_016 --input RegNetX-1.6GF_dds_8gpu.pyth \
        --output x016.weights.h5
    python launch/convert.py --from tf_keras --model resnet_rs_50 --input resnet-rs-50-i160.h5 --output rs50.weights.h5

The converter refuses a model that does not match (it lists the tensors that are missing, left over or of another
shape). Load the result with `regnet_tf.applications.RegNetY040(weights="regnety_040.weights.h5")`. Same as the
console script `regnet-convert` (after `pip install -e .`).
"""

from regnet_tf.cli.convert import run

if __name__ == "__main__":
    run()
