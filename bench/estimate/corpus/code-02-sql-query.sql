-- Leases expiring in the next 24 months, with their share of the building's rent.
SELECT p.name AS property,
       l.suite,
       t.legal_name AS tenant,
       l.rsf,
       l.expires_on,
       l.base_rent_psf * l.rsf AS annual_rent,
       ROUND(100.0 * l.base_rent_psf * l.rsf / SUM(l.base_rent_psf * l.rsf) OVER (PARTITION BY p.id), 1) AS pct_of_rent
FROM leases l
JOIN properties p ON p.id = l.property_id
JOIN tenants t ON t.id = l.tenant_id
WHERE l.status = 'active'
  AND l.expires_on BETWEEN CURRENT_DATE AND CURRENT_DATE + INTERVAL '24 months'
  AND p.portfolio_id = $1
ORDER BY l.expires_on, annual_rent DESC
LIMIT 200;
