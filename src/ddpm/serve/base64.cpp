// base64.cpp — see base64.h (RFC 4648 §4).
#include "ddpm/serve/base64.h"

#include <stdexcept>

namespace ddpm::serve {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = in.size() - i;
  if (rest == 1) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& text) {
  size_t n = text.size();
  size_t pad = 0;
  while (n > 0 && text[n - 1] == '=' && pad < 2) {
    --n;
    ++pad;
  }
  if (pad > 0 && text.size() % 4 != 0) throw std::invalid_argument("not valid base64: bad padding");
  if (n % 4 == 1) throw std::invalid_argument("not valid base64: bad length");
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = value_of(text[i]);
    if (v < 0) throw std::invalid_argument("not valid base64: unexpected character at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) throw std::invalid_argument("not valid base64: stray bits at the end");
  return out;
}

std::string strip_data_url(const std::string& text) {
  if (text.rfind("data:", 0) != 0) return text;
  const auto comma = text.find(',');
  if (comma == std::string::npos) throw std::invalid_argument("a data URL without a comma");
  const std::string head = text.substr(5, comma - 5);  // "image/png;base64"
  if (head.rfind("image/", 0) != 0) throw std::invalid_argument("a data URL that is not an image (" + head.substr(0, 40) + ")");
  if (head.size() < 7 || head.compare(head.size() - 7, 7, ";base64") != 0)
    throw std::invalid_argument("a data URL that is not base64");
  return text.substr(comma + 1);
}

}  // namespace ddpm::serve
