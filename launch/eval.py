"""Evaluate a checkpoint (a model_dir written by launch/train.py), an exported SavedModel or an exported TFLite /
ONNX / OpenVINO file on a data source.

    python launch/eval.py --model_dir runs/demo                              # last checkpoint, EMA weights
    python launch/eval.py --saved_model runs/demo/export/390 --data demo     # through serving_default (bytes in)
    python launch/eval.py --tflite out/model_int8.tflite --data demo     # likewise --onnx F.onnx, --openvino F.xml
    python launch/eval.py --openvino out/model.xml --precision bf16 --data demo   # OpenVINO at bf16: what it costs
    python launch/eval.py --model_dir runs/rs152 --data_dir /data/imagenet --split validation
    python launch/eval.py --model regnety_040 --weights timm/regnety_040.ra3_in1k --data_dir /data/imagenet
                                               # trained weights, at their own eval size, crop and interpolation

Same as the console script `regnet-eval` (after `pip install -e .`); `--verbose` shows the traceback of an
error.
"""

from regnet_tf.cli.eval import run

if __name__ == "__main__":
    run()
