interface BudgetMeterProps {
  usedTokens: number;
  limitTokens: number;
  warnRatio?: number;
}

export function budgetState({ usedTokens, limitTokens, warnRatio = 0.8 }: BudgetMeterProps): "ok" | "warn" | "blocked" {
  if (limitTokens <= 0) return "blocked";
  const ratio = usedTokens / limitTokens;
  if (ratio >= 1) return "blocked";
  return ratio >= warnRatio ? "warn" : "ok";
}

export const formatTokens = (n: number): string =>
  n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)}M` : n >= 1_000 ? `${(n / 1_000).toFixed(1)}k` : `${n}`;
