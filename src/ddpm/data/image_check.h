// image_check.h — the structure walk that decides whether a PNG or JPEG file is complete, before stb_image sees
// it (check_image_complete, declared in image_folder.h, dispatches on the signature to these). Bytes only: no
// decoding (image_decode.h), no file I/O. Internal to the image-folder reader; torch-free (std + zlib's crc32).
//
// The format is taken from the content (PNG or JPEG signature), not the extension. A PNG needs its IEND chunk and
// correct CRCs on critical chunks, a JPEG needs its end-of-image marker after the last scan (stb would pad a cut
// JPEG with grey). Bytes after IEND / EOI are ignored (the image itself is complete).
// Errors are std::runtime_error "<source>: <why>".
#pragma once

#include <cstddef>
#include <string>

namespace ddpm::image_folder_detail {

// `b` holds n >= 8 bytes starting with the PNG signature: walks the chunks up to IEND.
void check_png(const unsigned char* b, size_t n, const std::string& src);

// `b` holds n >= 3 bytes starting with FF D8 FF (SOI): walks the segments and scans up to EOI.
void check_jpeg(const unsigned char* b, size_t n, const std::string& src);

}  // namespace ddpm::image_folder_detail
