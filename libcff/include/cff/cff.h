// Umbrella header: the whole libcff method API.
#pragma once

#include "cff/attack.h"
#include "cff/denoise.h"
#include "cff/device.h"
#include "cff/energy.h"
#include "cff/engine.h"
#include "cff/loss.h"
#include "cff/model_file.h"
#include "cff/network.h"
#include "cff/ood.h"
#include "cff/sampler.h"
#include "cff/sampler_defaults.h"
#include "cff/schedule.h"
#include "cff/seeds.h"
#include "cff/tensor_file.h"
#include "cff/threads.h"
