#include "plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "data/png_writer.h"

namespace cff::plot {
namespace {

const int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kBlack(0, 0, 0), kGrid(225, 225, 225), kWhite(255, 255, 255);
constexpr double kTickScale = 0.4, kLabelScale = 0.5, kTitleScale = 0.6;

cv::Size text_size(const std::string &text, double scale, int thickness = 1) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, thickness, &baseline);
}

// Draws text with its anchor at (x, y): align -1 left, 0 centre, 1 right; y is the baseline.
void put_text(cv::Mat &image, const std::string &text, cv::Point at, double scale, int align = -1,
              const cv::Scalar &color = kBlack, int thickness = 1) {
  const auto size = text_size(text, scale, thickness);
  at.x -= align < 0 ? 0 : (align == 0 ? size.width / 2 : size.width);
  cv::putText(image, text, at, kFont, scale, color, thickness, cv::LINE_AA);
}

// Text turned 90 degrees counter-clockwise, reading bottom to top, centred on `centre`.
void put_vertical_text(cv::Mat &image, const std::string &text, cv::Point centre, double scale) {
  const auto size = text_size(text, scale);
  cv::Mat strip(size.height + 8, size.width + 4, CV_8UC3, kWhite);
  put_text(strip, text, {2, size.height + 3}, scale);
  cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
  cv::Rect target(centre.x - strip.cols / 2, centre.y - strip.rows / 2, strip.cols, strip.rows);
  target &= cv::Rect(0, 0, image.cols, image.rows);
  if (target.area() > 0) {
    cv::Mat source = strip(cv::Rect(0, 0, target.width, target.height));
    cv::Mat mask;
    cv::cvtColor(source, mask, cv::COLOR_BGR2GRAY);
    mask = mask < 250;  // copy only the ink, so grid lines under the label stay visible
    source.copyTo(image(target), mask);
  }
}

std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char s[32];
  std::snprintf(s, sizeof(s), "%.*f", decimals, std::abs(value) < step * 1e-6 ? 0.0 : value);
  return s;
}

// The plot area inside fixed margins and the mapping from data to pixels.
struct Frame {
  cv::Rect area;
  Axes axes;
  int px(double x) const {
    return area.x + static_cast<int>(std::lround((x - axes.x_min) / (axes.x_max - axes.x_min) * area.width));
  }
  int py(double y) const {
    return area.y + area.height -
           static_cast<int>(std::lround((y - axes.y_min) / (axes.y_max - axes.y_min) * area.height));
  }
};

Frame draw_frame(cv::Mat &image, const Axes &axes) {
  Frame frame{cv::Rect(72, 40, image.cols - 72 - 24, image.rows - 40 - 58), axes};
  if (!(frame.axes.x_max > frame.axes.x_min)) frame.axes.x_max = frame.axes.x_min + 1;
  if (!(frame.axes.y_max > frame.axes.y_min)) frame.axes.y_max = frame.axes.y_min + 1;
  const auto &a = frame.area;
  const auto xt = nice_ticks(frame.axes.x_min, frame.axes.x_max), yt = nice_ticks(frame.axes.y_min, frame.axes.y_max);
  const double x_step = xt.size() > 1 ? xt[1] - xt[0] : 1, y_step = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : xt) {
    const int x = frame.px(t);
    cv::line(image, {x, a.y}, {x, a.y + a.height}, kGrid, 1);
    cv::line(image, {x, a.y + a.height}, {x, a.y + a.height + 5}, kBlack, 1);
    put_text(image, tick_label(t, x_step), {x, a.y + a.height + 19}, kTickScale, 0);
  }
  for (double t : yt) {
    const int y = frame.py(t);
    cv::line(image, {a.x, y}, {a.x + a.width, y}, kGrid, 1);
    cv::line(image, {a.x - 5, y}, {a.x, y}, kBlack, 1);
    put_text(image, tick_label(t, y_step), {a.x - 8, y + 5}, kTickScale, 1);
  }
  cv::rectangle(image, a, kBlack, 1);
  put_text(image, axes.title, {image.cols / 2, 26}, kTitleScale, 0, kBlack, 1);
  put_text(image, axes.x_label, {a.x + a.width / 2, image.rows - 14}, kLabelScale, 0);
  put_vertical_text(image, axes.y_label, {16, a.y + a.height / 2}, kLabelScale);
  return frame;
}

struct LegendEntry {
  std::string label;
  cv::Scalar color;
};

// Legend box in the lower-right corner of the plot area, or the upper-right one.
void draw_legend(cv::Mat &image, const Frame &frame, const std::vector<LegendEntry> &entries, bool top) {
  std::vector<LegendEntry> shown;
  for (const auto &e : entries) {
    if (!e.label.empty()) shown.push_back(e);
  }
  if (shown.empty()) return;
  int width = 0;
  for (const auto &e : shown) width = std::max(width, text_size(e.label, kTickScale).width);
  const int row = 18, box_w = width + 44, box_h = static_cast<int>(shown.size()) * row + 10;
  const auto &a = frame.area;
  const cv::Rect box(a.x + a.width - box_w - 8, top ? a.y + 8 : a.y + a.height - box_h - 8, box_w, box_h);
  cv::rectangle(image, box, kWhite, cv::FILLED);
  cv::rectangle(image, box, cv::Scalar(160, 160, 160), 1);
  for (size_t i = 0; i < shown.size(); ++i) {
    const int y = box.y + 14 + static_cast<int>(i) * row;
    cv::line(image, {box.x + 8, y - 4}, {box.x + 32, y - 4}, shown[i].color, 3, cv::LINE_AA);
    put_text(image, shown[i].label, {box.x + 38, y}, kTickScale);
  }
}

}  // namespace

cv::Scalar palette(size_t i) {
  // Okabe-Ito, in BGR, yellow last because it is faint on white.
  static const cv::Scalar colors[] = {{178, 114, 0},  {0, 94, 213},    {115, 158, 0}, {167, 121, 204},
                                      {0, 159, 230},  {233, 180, 86},  {0, 0, 0},     {66, 228, 240}};
  return colors[i % 8];
}

std::vector<double> nice_ticks(double low, double high, int target) {
  if (!(high > low) || !std::isfinite(low) || !std::isfinite(high)) return {low};
  const double raw = (high - low) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double first = std::ceil(low / step - 1e-9);
  for (double i = first; i * step <= high + step * 1e-9; i += 1) ticks.push_back(i * step);
  return ticks;
}

cv::Mat line_chart(const Axes &axes, const std::vector<Series> &series, cv::Size size) {
  cv::Mat image(size, CV_8UC3, kWhite);
  const auto frame = draw_frame(image, axes);
  std::vector<LegendEntry> legend;
  for (const auto &s : series) {
    for (size_t i = 1; i < std::min(s.x.size(), s.y.size()); ++i) {
      cv::Point p(frame.px(s.x[i - 1]), frame.py(s.y[i - 1])), q(frame.px(s.x[i]), frame.py(s.y[i]));
      if (cv::clipLine(frame.area, p, q)) cv::line(image, p, q, s.color, s.thickness, cv::LINE_AA);
    }
    legend.push_back({s.label, s.color});
  }
  draw_legend(image, frame, legend, false);
  return image;
}

cv::Mat histogram_chart(const std::string &title, const std::string &x_label,
                        const std::vector<HistogramSeries> &series, int bins, const std::optional<Marker> &marker,
                        cv::Size size) {
  bins = std::max(1, bins);
  double low = INFINITY, high = -INFINITY;
  for (const auto &s : series) {
    for (double v : s.values) {
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
  }
  if (marker && std::isfinite(marker->x)) low = std::min(low, marker->x), high = std::max(high, marker->x);
  if (!std::isfinite(low)) low = 0, high = 1;
  if (!(high > low)) low -= 0.5, high += 0.5;
  const double pad = 0.02 * (high - low);
  low -= pad, high += pad;
  const double width = (high - low) / bins;
  std::vector<std::vector<double>> density(series.size(), std::vector<double>(static_cast<size_t>(bins), 0.0));
  double peak = 0;
  for (size_t k = 0; k < series.size(); ++k) {
    size_t finite = 0;
    for (double v : series[k].values) {
      if (!std::isfinite(v)) continue;
      const int b = std::clamp(static_cast<int>((v - low) / width), 0, bins - 1);
      density[k][static_cast<size_t>(b)] += 1;
      ++finite;
    }
    for (auto &d : density[k]) {
      d = finite ? d / (static_cast<double>(finite) * width) : 0.0;
      peak = std::max(peak, d);
    }
  }
  cv::Mat image(size, CV_8UC3, kWhite);
  const auto frame = draw_frame(image, {title, x_label, "density", low, high, 0, peak > 0 ? peak * 1.12 : 1});
  std::vector<LegendEntry> legend;
  for (size_t k = 0; k < series.size(); ++k) {
    cv::Mat overlay = image.clone();
    for (int b = 0; b < bins; ++b) {
      const double d = density[k][static_cast<size_t>(b)];
      if (d <= 0) continue;
      cv::rectangle(overlay, cv::Point(frame.px(low + b * width), frame.py(d)),
                    cv::Point(frame.px(low + (b + 1) * width), frame.py(0)), series[k].color, cv::FILLED);
    }
    cv::addWeighted(overlay, 0.35, image, 0.65, 0, image);
    // Outline as a step curve, so overlapping bars of the other set stay readable.
    cv::Point previous(frame.px(low), frame.py(0));
    for (int b = 0; b < bins; ++b) {
      const int y = frame.py(density[k][static_cast<size_t>(b)]);
      const cv::Point left(frame.px(low + b * width), y), right(frame.px(low + (b + 1) * width), y);
      cv::line(image, previous, left, series[k].color, 1, cv::LINE_AA);
      cv::line(image, left, right, series[k].color, 1, cv::LINE_AA);
      previous = right;
    }
    cv::line(image, previous, {previous.x, frame.py(0)}, series[k].color, 1, cv::LINE_AA);
    legend.push_back({series[k].label + " (n=" + std::to_string(series[k].values.size()) + ")", series[k].color});
  }
  if (marker && std::isfinite(marker->x)) {
    const int x = frame.px(marker->x);
    for (int y = frame.area.y; y < frame.area.y + frame.area.height; y += 10) {
      cv::line(image, {x, y}, {x, std::min(y + 6, frame.area.y + frame.area.height)}, kBlack, 2);
    }
    legend.push_back({marker->label, kBlack});
  }
  draw_legend(image, frame, legend, true);
  return image;
}

cv::Mat matrix_chart(const std::string &title, const std::vector<std::vector<long>> &counts,
                     const std::vector<std::string> &labels, const std::string &row_title,
                     const std::string &column_title) {
  const int k = static_cast<int>(counts.size());
  const int cell = 52;
  int label_width = 0;
  for (const auto &l : labels) label_width = std::max(label_width, text_size(l, kTickScale).width);
  const int left = 34 + label_width + 10, top = 46, bottom = label_width + 46;
  cv::Mat image(top + k * cell + bottom, left + k * cell + 20, CV_8UC3, kWhite);
  const cv::Scalar dark(110, 45, 8);  // deep blue (BGR)
  for (int r = 0; r < k; ++r) {
    long row_total = 0;
    for (long v : counts[static_cast<size_t>(r)]) row_total += v;
    for (int c = 0; c < k; ++c) {
      const long v = counts[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const double share = row_total > 0 ? static_cast<double>(v) / static_cast<double>(row_total) : 0.0;
      const cv::Scalar shade = kWhite * (1 - share) + dark * share;
      const cv::Rect box(left + c * cell, top + r * cell, cell, cell);
      cv::rectangle(image, box, shade, cv::FILLED);
      cv::rectangle(image, box, cv::Scalar(200, 200, 200), 1);
      put_text(image, std::to_string(v), {box.x + cell / 2, box.y + cell / 2 + 5}, kTickScale, 0,
               share > 0.45 ? kWhite : kBlack, r == c ? 2 : 1);
    }
  }
  for (int i = 0; i < k; ++i) {
    const std::string label = i < static_cast<int>(labels.size()) ? labels[static_cast<size_t>(i)] : std::to_string(i);
    put_text(image, label, {left - 8, top + i * cell + cell / 2 + 5}, kTickScale, 1);
    const auto size = text_size(label, kTickScale);
    put_vertical_text(image, label, {left + i * cell + cell / 2, top + k * cell + 8 + size.width / 2}, kTickScale);
  }
  cv::rectangle(image, cv::Rect(left, top, k * cell, k * cell), kBlack, 1);
  put_text(image, title, {image.cols / 2, 28}, kTitleScale, 0);
  put_text(image, column_title, {left + k * cell / 2, image.rows - 12}, kLabelScale, 0);
  put_vertical_text(image, row_title, {16, top + k * cell / 2}, kLabelScale);
  return image;
}

void write_png(const std::string &path, const cv::Mat &image) {
  cv::Mat pixels;
  if (image.type() == CV_8UC3) {
    cv::cvtColor(image, pixels, cv::COLOR_BGR2RGB);
  } else if (image.type() == CV_8UC1) {
    pixels = image.clone();
  } else {
    throw std::runtime_error(path + ": can only write 8-bit grey or BGR images");
  }
  if (!pixels.isContinuous()) pixels = pixels.clone();
  auto tensor = torch::from_blob(pixels.data, {pixels.rows, pixels.cols, pixels.channels()}, torch::kUInt8)
                    .permute({2, 0, 1})
                    .clone();
  cff::data::write_png(path, tensor);
}

}  // namespace cff::plot
