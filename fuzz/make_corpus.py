#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpus in fuzz/corpus/<target>/: small valid files of each format and one
malformed file per rejection rule. Re-run after changing it; the files are committed. Standard library only."""
import gzip, json, os, struct, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st(header, data=b"", raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


# --- safetensors ---------------------------------------------------------------------------------------------
put("safetensors", "valid_two.st", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                       "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
                                       "__metadata__": {"format": "ddpm.cpp", "step": "3"}}, bytes(16)))
put("safetensors", "valid_dtypes.st", st({"f64": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                                          "f16": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},
                                          "bf": {"dtype": "BF16", "shape": [1, 1], "data_offsets": [12, 14]},
                                          "u8": {"dtype": "U8", "shape": [2], "data_offsets": [14, 16]},
                                          "e": {"dtype": "BOOL", "shape": [0, 3], "data_offsets": [16, 16]},
                                          "s": {"dtype": "I32", "shape": [], "data_offsets": [16, 20]}}, bytes(20)))
put("safetensors", "empty.st", st({}))
ok8 = bytes(8)
put("safetensors", "bad_header_too_long.st", b"\xff" + st({})[1:])
put("safetensors", "bad_invalid_json.st", st(None, ok8, raw_header=b'{"a": ['))
put("safetensors", "bad_unknown_dtype.st", st({"a": {"dtype": "F8X", "shape": [2], "data_offsets": [0, 8]}}, ok8))
put("safetensors", "bad_size_mismatch.st", st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, ok8))
put("safetensors", "bad_out_of_range.st", st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, ok8))
put("safetensors", "bad_overlap.st", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, ok8))
put("safetensors", "bad_gap.st", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, ok8))
put("safetensors", "bad_duplicate.st", st(None, ok8, raw_header=
    b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'))

# --- IDX (first byte: 0 = images, 1 = labels) ----------------------------------------------------------------
imgs = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
labs = struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])
put("idx", "valid_images", b"\x00" + imgs)
put("idx", "valid_labels", b"\x01" + labs)
put("idx", "valid_images_gz", b"\x00" + gzip.compress(imgs, mtime=0))
put("idx", "valid_labels_gz", b"\x01" + gzip.compress(labs, mtime=0))
put("idx", "bad_magic", b"\x00" + struct.pack(">IIII", 0x801, 1, 1, 1) + b"\x00")
put("idx", "bad_size", b"\x00" + struct.pack(">IIII", 0x803, 5, 28, 28) + bytes(100))
put("idx", "bad_truncated_gz", b"\x00" + gzip.compress(imgs, mtime=0)[:20])

# --- CIFAR-10 (records of 1 label byte + 3072 pixel bytes) ----------------------------------------------------
rec = lambda label: bytes([label]) + bytes((i * 7 + label) % 256 for i in range(3072))
put("cifar10", "valid_one", rec(3))
put("cifar10", "valid_two", rec(0) + rec(9))
put("cifar10", "bad_label", rec(1) + rec(10))
put("cifar10", "bad_size", rec(1)[:-1])

# --- config (first byte: even = TOML, odd = JSON) -------------------------------------------------------------
cfg_dir = os.path.join(HERE, "..", "configs")
for name in sorted(os.listdir(cfg_dir)):
    if name.endswith(".toml"):
        put("config", "toml_" + name[:-5], b"\x00" + open(os.path.join(cfg_dir, name), "rb").read())
put("config", "toml_bad_key", b"\x00[train]\nbogus = 1\n")
put("config", "toml_bad_type", b"\x00[model]\nch = \"wide\"\n")
put("config", "json_tiny", b"\x01" + json.dumps({
    "preset": "tiny",
    "model": {"image_size": 28, "channels": 1, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
              "attn_resolutions": [14], "dropout": 0.0},
    "diffusion": {"schedule": "linear", "timesteps": 1000, "variance": "fixed_large"},
    "train": {"steps": 3, "batch_size": 4, "lr": 0.0002, "keep_checkpoints": 2}}).encode())
print("wrote", sum(len(fs) for _, _, fs in os.walk(ROOT)), "files under", ROOT)
