/**
 * Energy and CO2e of a job from its measured wall time (ALGORITHM.md section 7):
 * E[kWh] = PUE * hours * (P_cpu + P_dram + gpus * P_gpu) / 1000, CO2e = E * intensity.
 */
import type { EnergyConfig } from '../config/env';

export interface EnergyReport {
  readonly seconds: number;
  readonly kWh: number;
  readonly co2eKg: number;
  readonly assumptions: EnergyConfig & { readonly units: string };
}

export function energyOf(seconds: number, c: EnergyConfig): EnergyReport {
  const kWh = (c.pue * (seconds / 3600) * (c.cpuWatts + c.dramWatts + c.gpus * c.gpuWatts)) / 1000;
  return {
    seconds,
    kWh,
    co2eKg: kWh * c.co2eKgPerKwh,
    assumptions: { ...c, units: 'seconds: wall time; kWh: kilowatt-hours; co2eKg: kg CO2-equivalent; watts: W' },
  };
}
