// shipped_files.h — finds the files that ship with the binary (preset configs, models) next to it: installed
// (cmake --install: PREFIX/bin/ddpm and PREFIX/share/ddpm/<sub>) or in the checkout for a binary in BUILD/.
// One lookup for every command (and the server) that takes a shipped file by name.
// Not here: what a name means (the commands decide), the download of files that do not ship (Inception).
#pragma once

#include <string>
#include <vector>

namespace ddpm {

// PREFIX/share/ddpm/<sub> and <checkout>/<sub>, relative to /proc/self/exe, in the order they are searched.
std::vector<std::string> shipped_dirs(const std::string& sub);
// The first regular file <dir>/<name> over shipped_dirs(sub), or "" if none has it.
std::string find_shipped_file(const std::string& sub, const std::string& name);
// The searched directories as one comma-separated list, for error messages.
std::string shipped_dirs_list(const std::string& sub);

}  // namespace ddpm
