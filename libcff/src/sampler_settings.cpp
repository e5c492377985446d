#include <cmath>
#include <stdexcept>

#include "cff/sampler_defaults.h"

namespace cff {

const std::vector<std::string> &sampler_names() {
  static const std::vector<std::string> names = {"centripetal", "langevin", "ascent"};
  return names;
}

std::string sampler_name(SamplerKind kind) { return sampler_names().at(static_cast<size_t>(kind)); }

SamplerKind parse_sampler(const std::string &name) {
  const auto &names = sampler_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<SamplerKind>(i);
  }
  throw std::invalid_argument("unknown sampler '" + name + "' (centripetal, langevin or ascent)");
}

void SamplerSettings::validate(double t_max) const {
  auto fail = [](const std::string &what) { throw std::invalid_argument(what); };
  if (sampler != SamplerKind::centripetal) {
    if (steps < 0) fail("steps must be >= 0");
    return;
  }
  if (steps < 1) fail("steps must be >= 1");
  if (!(t_start > 0.0 && t_start <= t_max)) {
    fail("t_start must be in (0, " + std::to_string(static_cast<long long>(std::llround(t_max))) + "]");
  }
  if (!(eta >= 0.0)) fail("eta must be >= 0");
  if (!(guidance >= 0.0) || !std::isfinite(guidance)) fail("guidance must be finite and >= 0");
  if (!(spacing_power > 0.0)) fail("spacing power must be > 0");
  if (corrector_steps < 0) fail("corrector steps must be >= 0");
  if (!(corrector_snr > 0.0)) fail("corrector SNR must be > 0");
}

}  // namespace cff
