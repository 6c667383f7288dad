// toml_text.cpp — see toml_text.h. No LibTorch.
#include "ddpm/io/formats/toml_text.h"

#include <cstdint>
#include <cstdio>
#include <stdexcept>

namespace ddpm {

std::string toml_to_ascii(const std::string& text, const std::string& source) {
  enum class S { Normal, Comment, Basic, MultiBasic, Literal, MultiLiteral } s = S::Normal;
  size_t line = 1;
  const size_t n = text.size();
  std::string out;
  out.reserve(n);
  auto starts = [&](size_t i, const char* three) { return i + 2 < n && text.compare(i, 3, three) == 0; };
  auto fail = [&](const std::string& why) { throw std::runtime_error(source + ":" + std::to_string(line) + ": " + why); };
  // Decodes the UTF-8 sequence at text[i] (a byte >= 0x80); returns the code point and advances i to its last byte.
  auto decode = [&](size_t& i) -> uint32_t {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const int len = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 < 0xE0 ? 2 : 0;
    if (len == 0 || i + len > n) fail("invalid UTF-8");
    uint32_t cp = b0 & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) fail("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("invalid UTF-8");
    i += len - 1;
    return cp;
  };
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      if (s == S::Comment || s == S::Basic || s == S::Literal) s = S::Normal;  // single-line constructs end here
      out.push_back('\n');
      continue;
    }
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X", c);
      fail(std::string("control character ") + hex + " (TOML allows none except tab and line breaks)");
    }
    if (c >= 0x80) {
      const uint32_t cp = decode(i);
      if (s == S::Comment) {
        out.push_back('?');
      } else if (s == S::Basic || s == S::MultiBasic) {
        char esc[16];
        if (cp <= 0xFFFF) std::snprintf(esc, sizeof(esc), "\\u%04X", static_cast<unsigned>(cp));
        else std::snprintf(esc, sizeof(esc), "\\U%08X", static_cast<unsigned>(cp));
        out += esc;
      } else if (s == S::Literal || s == S::MultiLiteral) {  // converted to a basic string: escapes work there
        char esc[16];
        if (cp <= 0xFFFF) std::snprintf(esc, sizeof(esc), "\\u%04X", static_cast<unsigned>(cp));
        else std::snprintf(esc, sizeof(esc), "\\U%08X", static_cast<unsigned>(cp));
        out += esc;
      } else {
        fail("non-ASCII character outside a string or comment");
      }
      continue;
    }
    if (s != S::Literal && s != S::MultiLiteral) out.push_back(static_cast<char>(c));
    switch (s) {
      case S::Normal:
        if (c == '#') s = S::Comment;
        else if (starts(i, "\"\"\"")) s = S::MultiBasic, out += "\"\"", i += 2;
        else if (c == '"') s = S::Basic;
        // 'literal strings' become "basic strings" (same content, \ and " escaped), so that non-ASCII text in them
        // can be escaped too (toml++'s own writer emits literal strings).
        else if (starts(i, "'''")) s = S::MultiLiteral, out.back() = '"', out += "\"\"", i += 2;
        else if (c == '\'') s = S::Literal, out.back() = '"';
        break;
      case S::Comment:
        break;
      case S::Basic:
      case S::MultiBasic:
        if (c == '\\') {  // an escape: copy the next ASCII character as is (a non-ASCII one is no valid escape)
          if (i + 1 < n && static_cast<unsigned char>(text[i + 1]) >= 0x80) fail("invalid escape sequence");
          if (i + 1 < n && text[i + 1] != '\n') out.push_back(text[++i]);
        } else if (s == S::Basic && c == '"') {
          s = S::Normal;
        } else if (s == S::MultiBasic && starts(i, "\"\"\"")) {
          out += "\"\"";
          i += 2;
          while (i + 1 < n && text[i + 1] == '"') out.push_back(text[++i]);  // up to two quotes may end the content
          s = S::Normal;
        }
        break;
      case S::Literal:
      case S::MultiLiteral:
        if (s == S::Literal && c == '\'') {
          out.push_back('"');
          s = S::Normal;
        } else if (s == S::MultiLiteral && starts(i, "'''")) {
          size_t k = 3;  // up to two more quotes belong to the content
          while (k < 5 && i + k < n && text[i + k] == '\'') ++k;
          out.append(k - 3, '\'');
          out += "\"\"\"";
          i += k - 1;
          s = S::Normal;
        } else if (c == '\\' || c == '"') {
          out.push_back('\\');
          out.push_back(static_cast<char>(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
        break;
    }
  }
  return out;
}

}  // namespace ddpm
