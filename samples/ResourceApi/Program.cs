await Gatehouse.Samples.ResourceApi.ResourceApiApp.Build(args).RunAsync();
