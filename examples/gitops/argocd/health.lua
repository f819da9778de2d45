-- Argo CD health check for lakeops.dev DataLake, EtlFunction and BackupPolicy, read from
-- the kstatus conditions the controller writes (Ready, Reconciling, Stalled).
-- Argo CD runs it with gopher-lua (Lua 5.1): `obj` is the live object, `hs` the answer.
-- argocd-cm-health.yaml embeds this file verbatim; the e2e test keeps the two equal.
local hs = { status = "Progressing", message = "Waiting for the lakeops controller to report status" }

local function condition(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if obj.status == nil then
  return hs
end

-- Conditions describe the generation in status.observedGeneration. Until the controller
-- has seen the latest spec, an old Ready or Stalled says nothing about it.
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the lakeops controller to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions or {}
local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  -- The controller cannot progress until someone changes the spec or AWS permissions.
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- Creating, waiting for a DataLake, or retrying a transient AWS error.
local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
elseif ready ~= nil then
  hs.message = describe(ready)
end
return hs
