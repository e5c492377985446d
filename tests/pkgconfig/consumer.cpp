// A program built only from `pkg-config --cflags --libs cff`, as a user of the installed library would:
// it loads a model, runs the force on a batch, and catches libcff's own exception type (which needs the
// type's symbols exported from libcff.so under the hidden default visibility).
#include <cstdio>

#include <cff/cff.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL\n");
    return 2;
  }
  cff::set_threads(1);
  const cff::Model model = cff::load_model(argv[1]);
  const auto x = torch::zeros({2, model.channels(), model.height(), model.width()});
  const cff::LogitsFunction f = model.logits_function();
  const auto force = cff::force_direction(f, x);
  const auto energy = cff::free_energy(force.logits.detach());
  std::printf("classes %ld, force %s, energy %.3f\n", static_cast<long>(model.num_classes()),
              force.direction.sizes() == x.sizes() ? "ok" : "wrong shape", energy[0].item<double>());
  try {
    cff::load_model_from_bytes("not a model", "bytes");
  } catch (const cff::ModelFileError &e) {
    std::printf("ModelFileError caught: %s\n", e.what());
    return 0;
  }
  std::printf("no ModelFileError\n");
  return 1;
}
