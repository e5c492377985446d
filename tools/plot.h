// Small charts drawn with OpenCV for the tools' reports: line charts (ROC curves), overlaid histograms
// with a marker line (energy in vs out, threshold), and an annotated matrix (confusion matrix).
// Every function returns a BGR image (CV_8UC3); write_png saves one atomically through the PNG writer
// the trainer uses. Colours come from `palette`, which is readable by colour-blind readers (Okabe-Ito).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace cff::plot {

// The i-th colour (BGR) of an 8-colour qualitative palette; wraps around.
cv::Scalar palette(size_t i);

struct Axes {
  std::string title, x_label, y_label;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
};

struct Series {
  std::string label;
  std::vector<double> x, y;
  cv::Scalar color;
  int thickness = 2;
};

// Line chart with ticks, grid, axis labels and a legend in the lower-right corner (empty labels are
// left out of it). Points outside the axes are clipped.
cv::Mat line_chart(const Axes &axes, const std::vector<Series> &series, cv::Size size = {640, 480});

struct HistogramSeries {
  std::string label;
  std::vector<double> values;
  cv::Scalar color;
};

struct Marker {
  double x = 0;
  std::string label;
};

// Histograms of several value sets on shared bins spanning all values (densities, so sets of different
// sizes compare), drawn as translucent bars with outlines, plus an optional vertical marker line.
// Non-finite values are left out. The y axis is "density".
cv::Mat histogram_chart(const std::string &title, const std::string &x_label,
                        const std::vector<HistogramSeries> &series, int bins = 40,
                        const std::optional<Marker> &marker = std::nullopt, cv::Size size = {640, 420});

// A K x K matrix of counts, cells shaded by their share of the row (white to blue), each count written
// in its cell; rows and columns labelled. counts is row-major, counts[row][column].
cv::Mat matrix_chart(const std::string &title, const std::vector<std::vector<long>> &counts,
                     const std::vector<std::string> &labels, const std::string &row_title,
                     const std::string &column_title);

// Writes a BGR (or grey) image as PNG, atomically. Throws std::runtime_error naming the path.
void write_png(const std::string &path, const cv::Mat &image);

// Ticks at 1, 2 or 5 times a power of ten covering [low, high], about `target` of them.
std::vector<double> nice_ticks(double low, double high, int target = 6);

}  // namespace cff::plot
