// base64.h — RFC 4648 base64 (the standard alphabet, with padding) for the images of the server's JSON, and
// data-URL unwrapping. Not a general codec library: no URL-safe alphabet, no line breaks.
#pragma once

#include <string>

namespace ddpm::serve {

std::string base64_encode(const std::string& bytes);
// Decodes padded or unpadded base64; throws std::invalid_argument("not valid base64: ...") on any other character,
// a bad length or bad padding. ASCII whitespace is not accepted either.
std::string base64_decode(const std::string& text);
// "data:image/png;base64,XXXX" -> "XXXX"; a plain base64 string is returned as it is. Throws on a data URL that is
// not base64 or not an image.
std::string strip_data_url(const std::string& text);

}  // namespace ddpm::serve
