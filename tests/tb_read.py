#!/usr/bin/python3
"""tb_read.py — an independent reader of TensorBoard event files, for checking src/ddpm/io/tensorboard.cpp.

Usage: tb_read.py FILE_OR_DIR
Prints JSON: {"file_version", "records", "torn_tail", "scalars": {tag: [[step, value], ...]},
              "images": {tag: [[step, height, width, colorspace, sha256 of the PNG], ...]}}
A directory is read as all its *tfevents* files in name order. A file ending inside a record (a torn tail)
is read up to there; a CRC mismatch prints one line and exits 1.

Not TensorFlow: the Event/Summary messages are built at runtime from a FileDescriptorProto (python3-protobuf),
CRC32C is crcmod's 'crc-32c' (python3-crcmod). Field numbers as in tensorflow/core/util/event.proto and
tensorflow/core/framework/summary.proto.
"""
import hashlib
import json
import os
import struct
import sys

import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

_crc32c = crcmod.predefined.mkCrcFun("crc-32c")
_F = descriptor_pb2.FieldDescriptorProto


def _masked(data):
    c = _crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _message_classes():
    fdp = descriptor_pb2.FileDescriptorProto(name="ddpm_tb_read/event.proto", package="tensorflow", syntax="proto3")

    def field(msg, name, number, ftype, type_name=None, label=_F.LABEL_OPTIONAL, oneof=None):
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof

    summary = fdp.message_type.add(name="Summary")
    image = summary.nested_type.add(name="Image")
    field(image, "height", 1, _F.TYPE_INT32)
    field(image, "width", 2, _F.TYPE_INT32)
    field(image, "colorspace", 3, _F.TYPE_INT32)
    field(image, "encoded_image_string", 4, _F.TYPE_BYTES)
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    field(value, "tag", 1, _F.TYPE_STRING)
    field(value, "simple_value", 2, _F.TYPE_FLOAT, oneof=0)
    field(value, "image", 4, _F.TYPE_MESSAGE, ".tensorflow.Summary.Image", oneof=0)
    field(summary, "value", 1, _F.TYPE_MESSAGE, ".tensorflow.Summary.Value", label=_F.LABEL_REPEATED)

    event = fdp.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    field(event, "wall_time", 1, _F.TYPE_DOUBLE)
    field(event, "step", 2, _F.TYPE_INT64)
    field(event, "file_version", 3, _F.TYPE_STRING, oneof=0)
    field(event, "summary", 5, _F.TYPE_MESSAGE, ".tensorflow.Summary", oneof=0)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("tensorflow.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


class CrcError(Exception):
    pass


def records(path):
    """Yields the payloads of a TFRecord file; returns True (via StopIteration.value) on a torn tail."""
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        if len(data) - off < 12:
            return True
        head = data[off:off + 8]
        if struct.unpack("<I", data[off + 8:off + 12])[0] != _masked(head):
            raise CrcError(f"{path}: CRC mismatch in the length of the record at byte {off}")
        (n,) = struct.unpack("<Q", head)
        if len(data) - off - 12 < n + 4:
            return True
        payload = data[off + 12:off + 12 + n]
        if struct.unpack("<I", data[off + 12 + n:off + 16 + n])[0] != _masked(payload):
            raise CrcError(f"{path}: CRC mismatch in the payload of the record at byte {off}")
        yield payload
        off += 16 + n
    return False


def read(target):
    if os.path.isdir(target):
        files = sorted(os.path.join(target, f) for f in os.listdir(target) if "tfevents" in f)
    else:
        files = [target]
    Event = _message_classes()
    out = {"file_version": None, "records": 0, "torn_tail": False, "scalars": {}, "images": {}}
    for path in files:
        gen = records(path)
        while True:
            try:
                payload = next(gen)
            except StopIteration as stop:
                out["torn_tail"] = out["torn_tail"] or bool(stop.value)
                break
            try:
                ev = Event.FromString(payload)
            except message.DecodeError as e:
                raise CrcError(f"{path}: record {out['records'] + 1} is not an Event ({e})") from e
            out["records"] += 1
            what = ev.WhichOneof("what")
            if what == "file_version" and out["file_version"] is None:
                out["file_version"] = ev.file_version
            if what != "summary":
                continue
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    out["scalars"].setdefault(v.tag, []).append([ev.step, v.simple_value])
                elif kind == "image":
                    im = v.image
                    sha = hashlib.sha256(im.encoded_image_string).hexdigest()
                    out["images"].setdefault(v.tag, []).append([ev.step, im.height, im.width, im.colorspace, sha])
    return out


def main(argv):
    if len(argv) != 2:
        print("usage: tb_read.py FILE_OR_DIR", file=sys.stderr)
        return 2
    try:
        result = read(argv[1])
    except CrcError as e:
        print(f"tb_read.py: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"tb_read.py: {argv[1]}: {e.strerror}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
