// Restarts after a promotion ([[client.restart]] with kind = "container-app" or "app-service",
// docs/events.md "Restarts"): the job's managed identity may restart the named apps in this
// resource group and nothing else.
//
// A custom role rather than a built-in one: the built-in roles that can restart an app
// (Contributor, Website Contributor, Container Apps Contributor) can also change or delete it.
// This one holds exactly what jwk-rotator calls (Azure resource provider operations,
// Microsoft Learn "Azure permissions for Containers" and "for Web and Mobile"):
//   Microsoft.App/containerApps/read                        GET the app (latestReadyRevisionName)
//   Microsoft.App/containerApps/revisions/restart/action    ContainerAppsRevisions_RestartRevision
//   Microsoft.Web/sites/restart/action                      WebApps_Restart
// and is assigned on each app, not on the resource group.
//
// Deploy:  az deployment group create -g RG -f infra/azure/restart-role.bicep \
//            -p principalId=<the job identity's principalId output of main.bicep> \
//               containerApps='["batch"]' webApps='["web"]'

targetScope = 'resourceGroup'

@description('Principal id of the managed identity the rotation job runs as (main.bicep output).')
param principalId string

@description('Names of the Container Apps in this resource group that jwk-rotator restarts.')
param containerApps array = []

@description('Names of the App Service apps in this resource group that jwk-rotator restarts.')
param webApps array = []

resource restartRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'jwk-rotator-restart')
  properties: {
    roleName: 'jwk-rotator restart (${resourceGroup().name})'
    description: 'Restart the Container Apps and App Service apps that read a jwk-rotator key, after a promotion.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.App/containerApps/read'
          'Microsoft.App/containerApps/revisions/restart/action'
          'Microsoft.Web/sites/restart/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource apps 'Microsoft.App/containerApps@2025-01-01' existing = [for name in containerApps: {
  name: name
}]

resource sites 'Microsoft.Web/sites@2024-04-01' existing = [for name in webApps: {
  name: name
}]

resource appRestart 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in containerApps: {
  name: guid(apps[i].id, principalId, restartRole.id)
  scope: apps[i]
  properties: {
    roleDefinitionId: restartRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource siteRestart 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in webApps: {
  name: guid(sites[i].id, principalId, restartRole.id)
  scope: sites[i]
  properties: {
    roleDefinitionId: restartRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
