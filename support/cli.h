// The command-line parsing that cff-train and cff-eval share, on CLI11: a table of options (name, value name, help,
// setter), --name VALUE and --name=VALUE, flags, -h for --help, and number parsing with one-line errors.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cff::cli {

// A bad command line: unknown option, missing or malformed value. Its message names the option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Option {
  std::string name;  // without the leading "--"
  std::string arg;   // value name shown in the help ("N", "FILE"); empty for a flag
  std::string help;
  std::function<void(const std::string &)> set;  // receives the value ("" for a flag)
};

// "--name: 'v' is not a number" (finite values only).
double to_double(const std::string &name, const std::string &v);
// "--name: 'v' is not an integer", "--name: must be at least MINIMUM".
int64_t to_int(const std::string &name, const std::string &v,
               int64_t minimum = std::numeric_limits<int64_t>::min());
// "WxH" (width x height, the order of every cff tool and of GStreamer caps) as {width, height}, each at least
// 1: "--name: expected WxH, got 'v'".
std::pair<int64_t, int64_t> to_size(const std::string &name, const std::string &v);
// Comma-separated items, empty ones dropped.
std::vector<std::string> split(const std::string &v);
// The items with `separator` between them.
std::string join(const std::vector<std::string> &items, const std::string &separator = ", ");

// Applies argv[1..] to the options and returns the arguments that are not options, in order. `hint` is
// appended to the unknown-option message (e.g. " (see --help)"). Throws UsageError.
std::vector<std::string> parse(int argc, char **argv, const std::vector<Option> &options, const std::string &hint = "");

// The option table as help lines: "  --name ARG   help".
void print_options(const std::vector<Option> &options);

// What a tool's --help and its usage errors say about it.
struct Program {
  std::string name;         // "cff-make-clip"
  std::string synopsis;     // what follows the name on the usage line: "--out CLIP.avi [options]"
  std::string description;  // printed under the usage line by --help (may be empty)
  bool arguments = false;   // whether it takes arguments that are not options (refused when false)
};

// The whole command line of a tool: adds --help/-h to `options` and parses. On --help prints "usage: NAME
// SYNOPSIS", the description and the options and exits 0; on a bad command line prints "NAME: reason (see
// --help)" to stderr and exits 2. Returns the arguments that are not options (none unless program.arguments).
std::vector<std::string> parse_or_exit(int argc, char **argv, std::vector<Option> options, const Program &program);

// For checks after parse_or_exit (positional arguments, options that go together): the same one-line
// usage error and exit status 2.
[[noreturn]] void usage_exit(const Program &program, const std::string &reason);

}  // namespace cff::cli
