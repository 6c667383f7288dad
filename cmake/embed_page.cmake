# embed_page.cmake — writes OUT, a C++ file defining ddpm::serve::web_page() with the text of IN (the web page of
# `ddpm serve`), as a raw string literal. Run by the build whenever the page changes.
file(READ "${IN}" content)
string(FIND "${content}" ")ddpm_page\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )ddpm_page\"")
endif()
file(WRITE "${OUT}.tmp" "// Generated from src/ddpm/serve/web/index.html by cmake/embed_page.cmake: do not edit.\n#include \"ddpm/serve/server.h\"\n\nnamespace ddpm::serve {\nconst std::string& web_page() {\n  static const std::string page = R\"ddpm_page(${content})ddpm_page\";\n  return page;\n}\n}  // namespace ddpm::serve\n")
file(RENAME "${OUT}.tmp" "${OUT}")
