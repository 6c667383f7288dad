// version.h — the project version (CMake's project(VERSION), through the generated version.cpp) and a
// description of the build: the LibTorch it was built against and the devices and c10d backends it supports.
#pragma once

#include <string>

namespace ddpm {

const char* version();          // "0.1.0"
std::string build_description();  // several lines: ddpm, LibTorch version, CUDA, c10d backends

}  // namespace ddpm
