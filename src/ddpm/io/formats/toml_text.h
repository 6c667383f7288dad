// toml_text.h — what a config file's bytes go through before the TOML parser (toml++) sees them, without
// LibTorch. Fuzzing found that toml++ 3.3.0 (Debian 12) reaches undefined behaviour (TOML_UNREACHABLE in
// is_non_ascii_horizontal_whitespace) whenever it asks whether certain non-ASCII code points are whitespace —
// U+00A1..U+0499 (é, ñ, ...) and U+2C8E..U+3087 — which it does inside strings and while skipping over a
// malformed value. So toml++ is only ever given pure ASCII, with the same meaning:
//   - non-ASCII text in a "basic string" becomes \uXXXX / \UXXXXXXXX escapes (the same string after parsing);
//   - non-ASCII in a comment becomes '?' (comments are ignored);
//   - 'literal strings' (no escapes in TOML) become "basic strings" with \ and " escaped, then the same;
//   - non-ASCII anywhere else (keys, bare values) is an error, as are invalid UTF-8 and control characters
//     other than tab, LF and CR (TOML 1.0 allows none).
// Line breaks are kept, so toml++'s line numbers stay right.
#pragma once

#include <string>

namespace ddpm {

// Returns the ASCII-only equivalent of `text`; throws std::runtime_error "<source>:<line>: ..." otherwise.
std::string toml_to_ascii(const std::string& text, const std::string& source);

}  // namespace ddpm
