#include "report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cff/model_file.h"
#include "support/files.h"

using nlohmann::json;

namespace cff::eval {
namespace {

// A number with `digits` decimals, or "n/a" for a missing value (null, absent).
std::string number(const json &value, int digits = 3) {
  if (!value.is_number()) return "n/a";
  char s[64];
  std::snprintf(s, sizeof(s), "%.*f", digits, value.get<double>());
  return s;
}

std::string percent(const json &value, int digits = 1) {
  if (!value.is_number()) return "n/a";
  char s[64];
  std::snprintf(s, sizeof(s), "%.*f%%", digits, 100 * value.get<double>());
  return s;
}

std::string text(const json &value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

const json &at(const json &j, const char *key) {
  static const json null;
  return j.is_object() && j.contains(key) ? j[key] : null;
}

std::string score_cells(const json &scores) {
  if (!scores.is_object()) return " n/a | n/a | n/a |";
  return " " + number(scores["auroc"]) + " | " + number(scores["aupr"]) + " | " + number(scores["fpr95"]) + " |";
}

std::string image(const std::string &caption, const json &file) {
  return file.is_string() ? "![" + caption + "](" + file.get<std::string>() + ")\n\n" : "";
}

void classification_section(std::ostringstream &md, const json &c) {
  md << "## Classification\n\n"
     << "Accuracy **" << percent(c["accuracy"], 2) << "** on " << c["images"] << " test images. "
     << "Expected calibration error of the softmax (" << c["ece_bins"] << " equal-width confidence bins): **"
     << number(c["ece"], 4) << "**.\n\n| class | images | accuracy |\n|---|---:|---:|\n";
  for (const auto &row : c["per_class"]) {
    md << "| " << text(row["label"]) << " | " << row["images"] << " | " << percent(row["accuracy"]) << " |\n";
  }
  md << "\nCalibration bins (only those with samples):\n\n| confidence bin | samples | mean confidence | accuracy |\n|---|---:|---:|---:|\n";
  const auto &bins = c["calibration_bins"];
  for (size_t b = 0; b < bins.size(); ++b) {
    if (bins[b]["count"].get<int64_t>() == 0) continue;
    char range[48];
    std::snprintf(range, sizeof(range), "%.3f-%.3f", static_cast<double>(b) / bins.size(), static_cast<double>(b + 1) / bins.size());
    md << "| " << range << " | " << bins[b]["count"] << " | " << number(bins[b]["confidence"]) << " | "
       << number(bins[b]["accuracy"]) << " |\n";
  }
  md << "\n" << image("confusion matrix", c["confusion_png"]);
}

void ood_section(std::ostringstream &md, const json &o) {
  const auto scores = o["scores"].get<std::vector<std::string>>();
  md << "## Out-of-distribution detection\n\n"
     << "In-distribution: " << at(o["in_distribution"], "images") << " test images (" << text(o["in_distribution"]["description"])
     << "), mean energy " << number(at(o["in_distribution"], "mean_energy")) << ". Scores (docs/ood.md), higher = more unusual: "
     << "**energy** U(x) = -logsumexp f(x); **msp** = 1 - max softmax probability; **mahalanobis** = smallest squared "
     << "Mahalanobis distance of the penultimate features to a class mean (shared covariance); **mahalanobis-moments** = the "
     << "same on the per-channel mean and spread of the last stage's feature maps; **complexity-energy** = U(x) minus the "
     << "fitted slope times the frame's complexity in bits per pixel. Fitted on " << at(o["fit"], "images")
     << " training images by " << text(at(o["fit"], "by"))
     << ". AUROC and AUPR take OOD as the positive class; FPR95 is the share of OOD images that pass as "
     << "in-distribution at the threshold keeping 95% of the test images.\n\n";
  if (o["threshold"].is_number()) {
    md << "The model flags by **" << text(o["threshold_score"]) << "** above " << number(o["threshold"], 4) << " (keeps "
       << percent(o["threshold_keep_rate"]) << " of held-out training images); it flags "
       << percent(at(o["in_distribution"], "flagged_at_threshold")) << " of the test images.\n\n";
  } else {
    md << "The model file carries no calibrated threshold for " << text(o["threshold_score"]) << ".\n\n";
  }
  md << "| set | kind | images |";
  for (const auto &name : scores) md << " " << name << " AUROC | AUPR | FPR95 |";
  md << " flagged at threshold |\n|---|---|---:|";
  for (size_t i = 0; i < scores.size(); ++i) md << "---:|---:|---:|";
  md << "---:|\n";
  for (const auto &row : o["sets"]) {
    md << "| " << text(row["name"]) << " | " << text(row["kind"]) << " | " << row["images"] << " |";
    for (const auto &name : scores) md << score_cells(row[name]);
    md << " " << percent(at(row, "flagged_at_threshold")) << " |\n";
  }
  md << "\n" << image("ROC curves of the energy score", at(o, "roc_png"));
  for (const auto &row : o["sets"]) md << image("energy histogram: " + text(row["name"]), row["histogram_png"]);
}

void generation_section(std::ostringstream &md, const json &g, const std::vector<std::string> &labels) {
  md << "## Conditional generation\n\n"
     << g["samples"] << " samples per sampler and step count (" << g["per_class"] << " per class). Samplers:";
  bool first = true;
  for (const auto &[name, settings] : g["samplers"].items()) {
    md << (first ? " " : "; ") << name << " (";
    bool first_setting = true;
    for (const auto &[key, value] : settings.items()) {
      md << (first_setting ? "" : ", ") << key << " " << (value.is_string() ? text(value) : number(value, 2));
      first_setting = false;
    }
    md << ")";
    first = false;
  }
  md << ". One step is one force evaluation for every sampler, so equal step counts are equal time budgets. **Agreement** is the share of samples whose argmax class equals the requested one.\n\n";
  if (g["judge"].is_null()) {
    md << "No `--judge` model was given: judge agreement and FID are skipped; only the model's own agreement is "
          "reported (a model judging its own samples is a weak test).\n\n";
  } else {
    md << "Judge: `" << text(g["judge"]["path"]) << "` (test accuracy " << percent(at(g["judge"], "test_accuracy"), 2) << ").";
    if (g.contains("fid_reference_images")) {
      md << " FID: Fréchet distance between the judge's penultimate features (" << at(g["judge"], "feature_dimension")
         << " dimensions) of the samples and of " << g["fid_reference_images"] << " test images";
      if (g.contains("fid_test_vs_test")) md << "; two disjoint test slices of that size give " << number(g["fid_test_vs_test"]);
      md << ".";
    } else {
      md << " FID skipped: " << text(at(g["judge"], "fid_skipped")) << ".";
    }
    md << "\n\n";
  }
  md << "**Diversity** is the mean pairwise L2 distance of a class's samples over that of " << at(g["diversity_reference"], "images_per_class")
     << " real test images of the class (1 = as varied as the data); the lowest class and the mean over classes are shown.\n\n";
  md << "| sampler | steps | judge agreement | model agreement | FID | diversity (lowest / mean) | seconds |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto &run : g["runs"]) {
    md << "| " << text(run["sampler"]) << " | " << run["steps"] << " | " << percent(run["judge_agreement"]) << " | " << percent(run["model_agreement"]) << " | "
       << number(run["fid"], 2) << " | " << number(at(run, "diversity_min"), 2) << " / " << number(at(run, "diversity_mean"), 2) << " | "
       << number(run["seconds"], 1) << " |\n";
  }
  if (!g["judge"].is_null() && !g["runs"].empty()) {
    md << "\nJudge agreement per class:\n\n| class |";
    for (const auto &run : g["runs"]) md << " " << text(run["sampler"]) << " " << run["steps"] << " |";
    md << "\n|---|";
    for (size_t i = 0; i < g["runs"].size(); ++i) md << "---:|";
    md << "\n";
    for (size_t k = 0; k < labels.size(); ++k) {
      md << "| " << labels[k] << " |";
      for (const auto &run : g["runs"]) md << " " << percent(at(run, "judge_agreement_per_class")[k]) << " |";
      md << "\n";
    }
  }
  md << "\nOne row per class, in label order:\n\n";
  for (const auto &run : g["runs"]) {
    md << image(text(run["sampler"]) + ", " + std::to_string(run["steps"].get<int64_t>()) + " steps", run["grid_png"]);
  }
  if (g.contains("unconditional")) {
    md << "\n### Unconditional samples\n\nCentripetal sampler without a label (w = 0). **Confident**: share of samples "
          "the judge classifies with max-softmax >= 0.9. **Classes**: the judge's share of samples per class, lowest and "
          "highest (0.1 each would be an even spread). **Diversity**: mean pairwise distance of the samples over that of "
          "as many test images.\n\n| steps | confident | classes (lowest / highest) | FID | diversity | seconds |\n"
          "|---:|---:|---:|---:|---:|---:|\n";
    for (const auto &run : g["unconditional"]) {
      std::string spread = "-";
      if (run["judge_classes"].is_array() && !run["judge_classes"].empty()) {
        const auto shares = run["judge_classes"].get<std::vector<double>>();
        spread = percent(*std::min_element(shares.begin(), shares.end())) + " / " + percent(*std::max_element(shares.begin(), shares.end()));
      }
      md << "| " << run["steps"] << " | " << percent(run["judge_confident"]) << " | " << spread << " | " << number(run["fid"], 2)
         << " | " << number(run["diversity"], 2) << " | " << number(run["seconds"], 1) << " |\n";
    }
    md << "\n";
    for (const auto &run : g["unconditional"]) {
      md << image("unconditional, " + std::to_string(run["steps"].get<int64_t>()) + " steps", run["grid_png"]);
    }
  }
}

void denoising_section(std::ostringstream &md, const json &d) {
  md << "## Denoising\n\n"
     << d["images"] << " test images. Noise: " << text(d["noise"]) << ". cff: `cff::denoise` with the known sigma, "
     << d["cff"]["steps"] << " step(s) from t*. NLM: `" << text(d["nlm"]["function"]) << "` with h = min("
     << number(d["nlm"]["h_over_sigma"], 2) << " x sigma, " << number(d["nlm"]["h_max"], 1)
     << ") (by default tuned for NLM's best PSNR on Fashion-MNIST test images, so the baseline is not handicapped)"
     << ", template window " << d["nlm"]["template_window"]
     << ", search window " << d["nlm"]["search_window"] << ". PSNR in dB (peak 255) and SSIM (11x11 Gaussian window, "
     << "sigma 1.5), means over the images.\n\n"
     << "**cff, est. sigma** runs the same denoiser with sigma estimated per image from the noisy image "
        "(`cff::estimate_noise_sigma`, what `cffdenoise sigma=0` does); the mean estimate is shown.\n\n";
  auto table = [&](const json &rows) {
    md << "| sigma (0-255) | PSNR noisy | PSNR cff | PSNR cff, est. sigma (mean estimate) | PSNR NLM | SSIM noisy | SSIM cff | SSIM NLM | NLM h |\n"
       << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto &row : rows) {
      md << "| " << number(row["sigma"], 0) << " | " << number(row["noisy"]["psnr"], 2) << " | " << number(row["cff"]["psnr"], 2)
         << " | " << number(at(at(row, "cff_estimated"), "psnr"), 2) << " (" << number(at(row, "sigma_estimated_mean"), 1) << ")"
         << " | " << number(row["nlm"]["psnr"], 2) << " | " << number(row["noisy"]["ssim"]) << " | " << number(row["cff"]["ssim"])
         << " | " << number(row["nlm"]["ssim"]) << " | " << number(row["nlm_h"], 1) << " |\n";
    }
  };
  table(d["rows"]);
  md << "\nColumns: clean | noisy | cff | NLM.\n\n";
  for (const auto &row : d["rows"]) md << image("sigma " + number(row["sigma"], 0), at(row, "strip_png"));
  if (d.contains("video")) {
    const auto &v = d["video"];
    md << "\n### Out of domain: natural video frames\n\n" << v["frames"] << " frames of `" << text(v["path"]) << "` at "
       << v["width"] << "x" << v["height"] << ", denoised in overlapping model-sized tiles (as `cffdenoise` does); "
       << "same noise, same NLM settings.\n\n";
    table(v["rows"]);
    md << "\n";
    for (const auto &row : v["rows"]) md << image("video, sigma " + number(row["sigma"], 0), at(row, "strip_png"));
  }
}

void robustness_section(std::ostringstream &md, const json &r) {
  md << "## Adversarial robustness\n\n"
     << "White-box attacks (cff/attack.h; eps in [0, 1] pixel units) on the first " << r["images"]
     << " test images; clean accuracy " << percent(r["clean_accuracy"]) << ". An image counts as robust when the attack "
     << "found no misclassified point in its eps-ball; the worst case over every attack below is **"
     << percent(r["worst_case_accuracy"]) << "**. Energy: U(x) = -logsumexp f(x) at the adversarial image minus at the "
     << "clean one; flagged = above the model's energy threshold; fooled and unflagged = images the attack turned from "
     << "right to wrong without tripping the alarm.\n\n"
     << "| attack | robust accuracy | mean dU | median dU | dU < 0 | flagged (clean) | fooled and unflagged | AUROC clean vs adv. | seconds |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto &a : r["attacks"]) {
    const auto &e = a["energy"];
    md << "| `" << text(a["attack"]) << "` | " << percent(a["accuracy"]) << " | " << number(e["mean_shift"], 2) << " | "
       << number(e["median_shift"], 2) << " | " << percent(e["share_lowered"]) << " | " << percent(at(e, "flagged")) << " ("
       << percent(at(e, "clean_flagged")) << ") | " << percent(at(e, "fooled_and_unflagged")) << " | "
       << number(e["auroc_clean_vs_adversarial"]) << " | " << number(a["seconds"], 1) << " |\n";
  }
  if (!r["attacks"].empty()) {
    md << "\nPer class (robust accuracy):\n\n| class |";
    for (size_t i = 0; i < r["attacks"].size(); ++i) md << " attack " << i + 1 << " |";
    md << "\n|---|";
    for (size_t i = 0; i < r["attacks"].size(); ++i) md << "---:|";
    md << "\n";
    const auto &first = r["attacks"][0]["per_class"];
    for (size_t c = 0; c < first.size(); ++c) {
      md << "| " << text(first[c]["label"]) << " |";
      for (const auto &a : r["attacks"]) md << " " << percent(a["per_class"][c]["accuracy"]) << " |";
      md << "\n";
    }
  }
  if (r.contains("masking_checks")) {
    md << "\nGradient-masking checks (varying `" << text(r["masking_checks_attack"]) << "`): a warning means the "
       << "robust accuracy above may be an artefact of hidden gradients rather than robustness.\n\n"
       << "| check | status | measured |\n|---|---|---|\n";
    for (const auto &c : r["masking_checks"]) {
      md << "| " << text(c["check"]) << " | " << text(c["status"]) << " | " << text(c["detail"]) << " |\n";
    }
  }
  md << "\n";
}

}  // namespace

std::string render_markdown(const json &s) {
  std::ostringstream md;
  const auto &m = s["model"];
  md << "# cff-eval report\n\n"
     << "- model: `" << text(m["path"]) << "` (input " << text(m["input"]) << ", " << m["classes"] << " classes";
  if (m["parameters"].is_number()) md << ", " << m["parameters"] << " parameters";
  md << ")\n- data: " << text(s["data"]["description"]) << ", " << s["data"]["test_images"] << " test images used\n"
     << "- device: " << text(s["device"]) << "\n- command: `" << text(s["command_line"]) << "`\n"
     << "- time: " << number(s["seconds"]["total"], 1) << " s\n";
  if (!s["skipped"].empty()) md << "- parts skipped: " << s["skipped"].dump() << "\n";
  md << "\nEvery number is also in `summary.json`.\n\n";
  const auto labels = m["labels"].get<std::vector<std::string>>();
  if (s.contains("classification")) classification_section(md, s["classification"]);
  if (s.contains("ood")) ood_section(md, s["ood"]);
  if (s.contains("generation")) generation_section(md, s["generation"], labels);
  if (s.contains("denoising")) denoising_section(md, s["denoising"]);
  if (s.contains("robustness")) robustness_section(md, s["robustness"]);
  md << "## Time\n\n| part | seconds |\n|---|---:|\n";
  for (const char *part : {"classification", "ood", "generation", "denoising", "robustness", "total"}) {
    if (s["seconds"].contains(part)) md << "| " << part << " | " << number(s["seconds"][part], 1) << " |\n";
  }
  return md.str();
}

std::string render_console(const json &s, const std::string &out_dir) {
  std::ostringstream out;
  char line[256];
  out << "cff-eval: " << text(s["model"]["path"]) << " on " << text(s["data"]["description"]) << " ("
      << s["data"]["test_images"] << " used), " << text(s["device"]) << ", " << number(s["seconds"]["total"], 1) << " s\n";
  if (s.contains("classification")) {
    const auto &c = s["classification"];
    out << "classification: accuracy " << percent(c["accuracy"], 2) << ", ECE " << number(c["ece"], 4) << " (" << c["ece_bins"]
        << " bins)\n";
  }
  if (s.contains("ood")) {
    const auto &o = s["ood"];
    const auto scores = o["scores"].get<std::vector<std::string>>();
    out << "OOD (AUROC / FPR95; OOD = positive; flagged by " << text(o["threshold_score"]) << ", in-distribution "
        << percent(at(o["in_distribution"], "flagged_at_threshold")) << ")\n";
    std::snprintf(line, sizeof(line), "  %-16s %6s", "set", "n");
    out << line;
    for (const auto &name : scores) {
      std::snprintf(line, sizeof(line), "  %-13.13s", name.c_str());
      out << line;
    }
    out << "  flagged\n";
    auto pair = [](const json &scores) {
      return scores.is_object() ? number(scores["auroc"]) + "/" + number(scores["fpr95"]) : std::string("n/a");
    };
    for (const auto &row : o["sets"]) {
      std::snprintf(line, sizeof(line), "  %-16.16s %6lld", text(row["name"]).c_str(),
                    static_cast<long long>(row["images"].get<int64_t>()));
      out << line;
      for (const auto &name : scores) {
        std::snprintf(line, sizeof(line), "  %-13s", pair(row[name]).c_str());
        out << line;
      }
      out << "  " << percent(at(row, "flagged_at_threshold")) << "\n";
    }
  }
  if (s.contains("generation")) {
    const auto &g = s["generation"];
    out << "generation (" << g["samples"] << " samples per sampler and step count, judge "
        << (g["judge"].is_null() ? std::string("none: judge metrics skipped") : text(g["judge"]["path"])) << ")\n";
    std::snprintf(line, sizeof(line), "  %-12s %5s  %-15s %-15s %9s %9s %8s\n", "sampler", "steps", "judge agreement", "model agreement",
                  "FID", "diversity", "seconds");
    out << line;
    for (const auto &run : g["runs"]) {
      std::snprintf(line, sizeof(line), "  %-12s %5lld  %-15s %-15s %9s %9s %8s\n", text(run["sampler"]).c_str(),
                    static_cast<long long>(run["steps"].get<int64_t>()),
                    percent(run["judge_agreement"]).c_str(), percent(run["model_agreement"]).c_str(),
                    number(run["fid"], 2).c_str(), number(at(run, "diversity_min"), 2).c_str(), number(run["seconds"], 1).c_str());
      out << line;
    }
    if (g.contains("unconditional")) {
      for (const auto &run : g["unconditional"]) {
        std::snprintf(line, sizeof(line), "  %-12s %5lld  %-15s %-15s %9s %9s %8s\n", "uncond.",
                      static_cast<long long>(run["steps"].get<int64_t>()), ("confident " + percent(run["judge_confident"])).c_str(), "-",
                      number(run["fid"], 2).c_str(), number(run["diversity"], 2).c_str(), number(run["seconds"], 1).c_str());
        out << line;
      }
    }
  }
  if (s.contains("denoising")) {
    const auto &d = s["denoising"];
    out << "denoising (" << d["images"] << " images; PSNR dB / SSIM)\n";
    std::snprintf(line, sizeof(line), "  %5s  %-15s %-15s %-15s %s\n", "sigma", "noisy", "cff", "NLM", "NLM h");
    out << line;
    auto pair = [](const json &f) { return number(f["psnr"], 2) + " / " + number(f["ssim"]); };
    auto print_rows = [&](const json &rows) {
      for (const auto &row : rows) {
        std::snprintf(line, sizeof(line), "  %5s  %-15s %-15s %-15s %s\n", number(row["sigma"], 0).c_str(), pair(row["noisy"]).c_str(),
                      pair(row["cff"]).c_str(), pair(row["nlm"]).c_str(), number(row["nlm_h"], 1).c_str());
        out << line;
      }
    };
    print_rows(d["rows"]);
    if (d.contains("video")) {
      out << "denoising, " << d["video"]["frames"] << " frames of " << text(d["video"]["path"]) << " (out of domain)\n";
      print_rows(d["video"]["rows"]);
    }
  }
  if (s.contains("robustness")) {
    const auto &r = s["robustness"];
    out << "robustness (" << r["images"] << " images, clean " << percent(r["clean_accuracy"]) << ", worst case "
        << percent(r["worst_case_accuracy"]) << ")\n";
    for (const auto &a : r["attacks"]) {
      out << "  " << text(a["attack"]) << ": " << percent(a["accuracy"]) << ", median dU "
          << number(a["energy"]["median_shift"], 2) << ", flagged " << percent(at(a["energy"], "flagged")) << "\n";
    }
    int warnings = 0;
    for (const auto &c : at(r, "masking_checks")) warnings += c["status"] == "warn";
    if (r.contains("masking_checks")) {
      out << "  gradient-masking checks: " << (warnings ? std::to_string(warnings) + " warning(s), see the report" : "all pass") << "\n";
    }
  }
  out << "report: " << (std::filesystem::path(out_dir) / "report.md").string() << "\n";
  return out.str();
}

void write_report(const std::string &out_dir, const json &summary) {
  const std::filesystem::path dir(out_dir);
  cff::files::write_atomically((dir / "summary.json").string(), summary.dump(2) + "\n");
  cff::files::write_atomically((dir / "report.md").string(), render_markdown(summary));
}

}  // namespace cff::eval
