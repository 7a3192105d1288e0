-- The runbook's report queries (docs/runbook.fr.md), copied verbatim: this file is the one place
-- selfheal reads them from, and tests/reports/test_queries.py checks each one is still the
-- runbook's text. `selfheal report` runs them unchanged with the runbook's windows; a custom
-- window or --as-of rewrites only their `applied_at > NOW() - INTERVAL '…'` bound (see
-- selfheal.registry.reports.render).

-- name: top-patches
-- Patches les plus utilisés
SELECT
  p.sdk_language,
  p.error_signature,
  p.description,
  COUNT(a.id) as applications,
  AVG(CASE WHEN a.success THEN 1.0 ELSE 0.0 END) as success_rate
FROM sdk_self_healing_registry p
LEFT JOIN sdk_patch_applications a ON p.id = a.patch_id
WHERE a.applied_at > NOW() - INTERVAL '7 days'
GROUP BY p.id, p.sdk_language, p.error_signature, p.description
ORDER BY applications DESC
LIMIT 10;

-- name: rollback-rates
-- Taux de rollback par patch
SELECT
  p.description,
  COUNT(*) as total_applications,
  SUM(CASE WHEN a.rollback_triggered THEN 1 ELSE 0 END) as rollbacks,
  (SUM(CASE WHEN a.rollback_triggered THEN 1 ELSE 0 END)::FLOAT / COUNT(*)::FLOAT * 100) as rollback_rate
FROM sdk_self_healing_registry p
JOIN sdk_patch_applications a ON p.id = a.patch_id
WHERE a.applied_at > NOW() - INTERVAL '24 hours'
GROUP BY p.id, p.description
HAVING COUNT(*) > 10
ORDER BY rollback_rate DESC;

-- name: developers
-- Erreurs par développeur
SELECT
  developer_id,
  sdk_language,
  COUNT(*) as total_patches_applied,
  SUM(CASE WHEN success THEN 1 ELSE 0 END) as successful
FROM sdk_patch_applications
WHERE applied_at > NOW() - INTERVAL '7 days'
GROUP BY developer_id, sdk_language
ORDER BY total_patches_applied DESC
LIMIT 20;

-- name: unpatched-errors
-- Erreurs sans patch disponible
SELECT
  sdk_language,
  LEFT(error_encountered, 100) as error_pattern,
  COUNT(*) as occurrences
FROM sdk_patch_applications
WHERE patch_applied = false
  AND applied_at > NOW() - INTERVAL '7 days'
GROUP BY sdk_language, LEFT(error_encountered, 100)
ORDER BY occurrences DESC
LIMIT 20;

-- name: failing-patches
SELECT p.id, p.description, COUNT(*) as failures
  FROM sdk_self_healing_registry p
  JOIN sdk_patch_applications a ON p.id = a.patch_id
  WHERE a.success = false
    AND a.applied_at > NOW() - INTERVAL '1 hour'
  GROUP BY p.id, p.description
  ORDER BY failures DESC;

-- name: rollbacks
SELECT
    p.description,
    a.error_encountered,
    a.context,
    a.applied_at
  FROM sdk_patch_applications a
  JOIN sdk_self_healing_registry p ON a.patch_id = p.id
  WHERE a.rollback_triggered = true
    AND a.applied_at > NOW() - INTERVAL '24 hours'
  ORDER BY a.applied_at DESC
  LIMIT 20;

-- name: export
SELECT
      p.sdk_language,
      p.error_signature,
      p.description,
      a.error_encountered,
      a.success,
      a.rollback_triggered,
      a.context,
      a.applied_at
    FROM sdk_patch_applications a
    JOIN sdk_self_healing_registry p ON a.patch_id = p.id
    WHERE a.applied_at > NOW() - INTERVAL '30 days'
    ORDER BY a.applied_at DESC;
