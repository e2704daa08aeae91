-- Issue 15 item 1: a known vehicle is changed by the admin or by the enterprise that owns it.
-- The owner is the enterprise that registered the vehicle (itself, or a guard at one of its gates) or the one
-- the admin names; NULL (a national record the admin imported, a city checkpoint's registration) is the admin's.
ALTER TABLE vehicles ADD COLUMN owner_enterprise_id text REFERENCES enterprises (id) ON DELETE SET NULL;
CREATE INDEX vehicles_owner_idx ON vehicles (owner_enterprise_id, plate) WHERE owner_enterprise_id IS NOT NULL;

-- Vehicles a guard registered before this migration: the audit log says which kiosk did, and so which gate's
-- enterprise (the gate's enterprise today: where a gate changed hands since, the admin corrects the owner).
UPDATE vehicles v SET owner_enterprise_id = first.enterprise_id
  FROM (SELECT DISTINCT ON (a.target) a.target AS plate, g.enterprise_id
          FROM audit_log a JOIN api_tokens t ON t.id = a.token_id JOIN gates g ON g.id = t.gate_id
         WHERE a.action = 'vehicle.put' AND a.role = 'kiosk' AND g.enterprise_id IS NOT NULL
         ORDER BY a.target, a.id) AS first
 WHERE v.plate = first.plate AND v.owner_enterprise_id IS NULL;
