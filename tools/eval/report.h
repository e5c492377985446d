// Rendering cff-eval's results (the JSON that evaluate() returns) as report.md and as the one-screen
// console summary, and writing the report folder's text files.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace cff::eval {

// The Markdown report: every table, with links to the PNG figures (paths relative to the report folder).
std::string render_markdown(const nlohmann::json &summary);

// A compact plain-text summary for the terminal (about one screen).
std::string render_console(const nlohmann::json &summary, const std::string &out_dir);

// Writes out_dir/report.md and out_dir/summary.json atomically. Throws std::runtime_error naming the file.
void write_report(const std::string &out_dir, const nlohmann::json &summary);

}  // namespace cff::eval
