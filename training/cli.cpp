#include "cli.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace cff::cli {

double to_double(const std::string &name, const std::string &v) {
  char *end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(d)) throw UsageError("--" + name + ": '" + v + "' is not a number");
  return d;
}

int64_t to_int(const std::string &name, const std::string &v, int64_t minimum) {
  char *end = nullptr;
  const long long i = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') throw UsageError("--" + name + ": '" + v + "' is not an integer");
  if (i < minimum) throw UsageError("--" + name + ": must be at least " + std::to_string(minimum));
  return i;
}

std::vector<std::string> split(const std::string &v) {
  std::vector<std::string> out;
  std::stringstream s(v);
  std::string item;
  while (std::getline(s, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> parse(int argc, char **argv, const std::vector<Option> &options, const std::string &hint) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.rfind("--", 0) != 0) {
      positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const auto eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Option *found = nullptr;
    for (const auto &opt : options) {
      if (opt.name == name) found = &opt;
    }
    if (!found) throw UsageError("unknown option --" + name + hint);
    if (!found->arg.empty() && eq == std::string::npos) {
      if (i + 1 >= argc) throw UsageError("--" + name + " needs a value (" + found->arg + ")");
      value = argv[++i];
    }
    found->set(value);
  }
  return positional;
}

std::string join(const std::vector<std::string> &items, const std::string &separator) {
  std::string joined;
  for (const auto &item : items) joined += (joined.empty() ? "" : separator) + item;
  return joined;
}

void print_options(const std::vector<Option> &options) {
  for (const auto &opt : options) {
    const std::string left = "--" + opt.name + (opt.arg.empty() ? "" : " " + opt.arg);
    std::printf("  %-22s %s\n", left.c_str(), opt.help.c_str());
  }
}

}  // namespace cff::cli
