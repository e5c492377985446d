#include "support/cli.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <CLI/CLI.hpp>

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

std::pair<int64_t, int64_t> to_size(const std::string &name, const std::string &v) {
  const auto x = v.find_first_of("xX");
  if (x == std::string::npos) throw UsageError("--" + name + ": expected WxH, got '" + v + "'");
  return {to_int(name, v.substr(0, x), 1), to_int(name, v.substr(x + 1), 1)};
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
  // CLI11 does the parsing (--name VALUE, --name=VALUE, flags, positionals, negative numbers as values);
  // the table keeps the help text and the setters, which run in command-line order as CLI11 meets them.
  CLI::App app;
  app.set_help_flag();  // --help is one of the table's options
  std::vector<std::string> positional;
  for (const auto &opt : options) {
    const std::string flag = "--" + opt.name + (opt.name == "help" ? ",-h" : "");
    CLI::Option *added = nullptr;
    if (opt.arg.empty()) {
      added = app.add_flag_callback(flag, [set = opt.set]() { set(""); });
    } else {
      added = app.add_option_function<std::string>(flag, [set = opt.set](const std::string &v) { set(v); });
      added->type_name(opt.arg)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    }
    added->trigger_on_parse();
  }
  app.add_option("arguments", positional);
  app.allow_extras();  // unknown options are named below, in the tools' own words
  try {
    app.parse(argc, argv);
  } catch (const CLI::ArgumentMismatch &e) {
    // CLI11 says "--name: 1 required N missing"; name the option and the value it wants instead.
    const std::string what = e.what();
    throw UsageError(what.substr(0, what.find(':')) + ": needs a value" + hint);
  } catch (const CLI::ParseError &e) {
    throw UsageError(e.what() + hint);
  }
  for (const auto &extra : app.remaining()) {
    if (extra.rfind("-", 0) == 0) throw UsageError("unknown option " + extra.substr(0, extra.find('=')) + hint);
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

std::vector<std::string> parse_or_exit(int argc, char **argv, std::vector<Option> options, const Program &program) {
  bool help = false;
  options.push_back({"help", "", "show this help", [&help](const std::string &) { help = true; }});
  std::vector<std::string> positional;
  try {
    positional = parse(argc, argv, options);
  } catch (const UsageError &e) {
    usage_exit(program, e.what());
  }
  if (!help && !program.arguments && !positional.empty()) usage_exit(program, "unexpected argument '" + positional[0] + "'");
  if (help) {
    std::printf("usage: %s %s\n", program.name.c_str(), program.synopsis.c_str());
    if (!program.description.empty()) std::printf("%s\n", program.description.c_str());
    std::printf("\n");
    print_options(options);
    std::exit(0);
  }
  return positional;
}

void usage_exit(const Program &program, const std::string &reason) {
  std::fprintf(stderr, "%s: %s (see --help)\n", program.name.c_str(), reason.c_str());
  std::exit(2);
}

}  // namespace cff::cli
