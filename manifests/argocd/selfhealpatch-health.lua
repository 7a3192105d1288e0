-- Argo CD health of a SelfHealPatch, read from the status the selfheal operator writes.
-- Progressing until the operator has synced the current generation; Degraded when the spec is
-- invalid or the patch was switched off (guard, kill switch, SQL); Healthy when served, or off
-- because its spec says `active: false`.
local hs = {}
local status = obj.status
if status == nil or status.state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the selfheal operator"
  return hs
end

local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return {}
end

local generation = obj.metadata.generation or 0
if (status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Generation " .. generation .. " is not synced yet"
  return hs
end

local active = condition("Active")
if status.state == "Invalid" then
  hs.status = "Degraded"
  hs.message = "Invalid: " .. (condition("Ready").message or "see status")
elseif status.state == "Pending" then
  hs.status = "Progressing"
  hs.message = (status.reason or "NotSynced") .. ": " .. (condition("Synced").message or "not synced yet")
elseif status.state == "Active" then
  hs.status = "Healthy"
  hs.message = active.message or "Active"
elseif status.reason == "SpecInactive" then
  hs.status = "Healthy"
  hs.message = "Inactive: spec.active is false"
else
  -- AutoDeactivated, ManualKillSwitch, DeactivatedInRegistry, Deleted
  hs.status = "Degraded"
  hs.message = (status.reason or "Inactive") .. ": " .. (active.message or "switched off")
end
return hs
